"""A round's dispatches are appended in growing batches that cover every dispatch once, in order."""

import pytest

from orchestrator.processes.decider import FIRST_BATCH, MAX_IN_FLIGHT, batches


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (1, [(0, 1)]),
        (4, [(0, 4)]),
        (5, [(0, 4), (4, 5)]),
        (100, [(0, 4), (4, 12), (12, 28), (28, 60), (60, 100)]),
    ],
)
def test_batches_grow_from_the_first(n: int, expected: list[tuple[int, int]]) -> None:
    assert FIRST_BATCH == 4
    assert batches(n) == expected


@pytest.mark.parametrize("n", [1, 7, 255, 256, 1000, 5000])
def test_batches_cover_every_dispatch_once_and_stay_bounded(n: int) -> None:
    got = batches(n)
    assert [i for i, _ in got] == [0] + [j for _, j in got[:-1]]
    assert got[-1][1] == n
    assert all(0 < j - i <= MAX_IN_FLIGHT for i, j in got)

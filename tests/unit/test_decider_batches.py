"""A round's dispatches are appended in growing batches that cover every dispatch once, in order,
and a cache hit that needs the round's earlier hits in a later wave."""

from datetime import UTC, datetime

import pytest

from orchestrator.decision.decide import Dispatch
from orchestrator.processes.decider import FIRST_BATCH, MAX_IN_FLIGHT, batches, waves
from schemas.events import TaskCacheHit, TaskDispatched


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


def test_cache_hits_go_in_the_largest_batches():
    assert batches(41, MAX_IN_FLIGHT) == [(0, 41)]
    assert batches(600, MAX_IN_FLIGHT) == [(0, 256), (256, 512), (512, 600)]


@pytest.mark.parametrize("n", [1, 7, 255, 256, 1000, 5000])
def test_batches_cover_every_dispatch_once_and_stay_bounded(n: int) -> None:
    got = batches(n)
    assert [i for i, _ in got] == [0] + [j for _, j in got[:-1]]
    assert got[-1][1] == n
    assert all(0 < j - i <= MAX_IN_FLIGHT for i, j in got)


T = datetime(2026, 1, 1, tzinfo=UTC)


def _hit(task: str, *needs: str) -> Dispatch:
    e = TaskCacheHit(event_id=f"h:{task}", occurred_at=T, graph_id="g", task_id=task, key="k")
    return Dispatch(event=e, expected_seq=1, version=1, needs=tuple(("g", n) for n in needs))


def _dispatch(task: str) -> Dispatch:
    e = TaskDispatched(
        event_id=f"d:{task}", occurred_at=T, graph_id="g", task_id=task, node_id="n", attempt=1, command="true"
    )
    return Dispatch(event=e, expected_seq=1, version=1)


@pytest.mark.parametrize(
    ("round_", "expected"),
    [
        ([], []),
        ([_dispatch("x"), _hit("a")], [["x", "a"]]),
        (
            [_hit("a"), _hit("b"), _hit("ab", "a", "b"), _hit("top", "ab"), _dispatch("x")],
            [["a", "b", "x"], ["ab"], ["top"]],
        ),
        ([_hit("a"), _hit("c", "a"), _hit("d", "a", "c")], [["a"], ["c"], ["d"]]),
    ],
)
def test_waves_put_each_hit_after_the_hits_it_needs(round_: list[Dispatch], expected: list[list[str]]) -> None:
    assert [[d.event.task_id for d in w] for w in waves(round_)] == expected

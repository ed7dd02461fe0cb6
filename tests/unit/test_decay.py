"""`projections.decay`: the pair update (one decay factor for two series) equals two single updates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from projections.decay import Decayed, add, add_pair
from tests.unit.builders import T0

LATER, EARLIER = T0 + timedelta(seconds=90), T0 - timedelta(seconds=40)
SEEN = Decayed(n=3, w=2.5, s1=4.0, s2=7.5, at=T0)
OTHER = Decayed(n=1, w=1.0, s1=0.5, s2=0.25, at=T0 + timedelta(seconds=5))


@pytest.mark.parametrize(
    ("a", "b", "at"),
    [
        (Decayed(), Decayed(), T0),  # both empty
        (SEEN, SEEN, LATER),  # same time, a newer sample
        (SEEN, SEEN, T0),  # same time, a sample at that time
        (SEEN, SEEN, EARLIER),  # same time, an older sample (decayed itself)
        (SEEN, OTHER, LATER),  # different times: two single updates
        (Decayed(), SEEN, LATER),  # one empty
        (OTHER, Decayed(), EARLIER),
    ],
)
def test_add_pair_is_two_adds(a: Decayed, b: Decayed, at) -> None:
    assert add_pair(a, 0.75, b, 3.0, at, 600.0) == (add(a, 0.75, at, 600.0), add(b, 3.0, at, 600.0))


def test_add_keeps_the_closed_form_for_an_older_sample() -> None:
    d = add(add(Decayed(), 2.0, T0, 60.0), 4.0, T0 - timedelta(seconds=60), 60.0)
    assert d.at == T0 and d.n == 2
    assert d.w == pytest.approx(1.5) and d.s1 == pytest.approx(2.0 + 0.5 * 4.0)

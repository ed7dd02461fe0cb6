"""Exponentially decayed statistics over event time: pure, so a view stays a function of the log.

A sample ``x`` taken at time ``t`` weighs ``2 ** (-(T - t) / half_life)`` at a later time ``T``.
`Decayed` holds the weighted sums at the time ``at`` of its newest sample, so the mean and the
spread are the closed forms

    mean = Σ w_i x_i / Σ w_i,   var = Σ w_i x_i² / Σ w_i − mean²,   w_i = 2 ** (-(at − t_i) / h)

updated in O(1) per sample. A sample older than ``at`` (events of different processes arrive
slightly out of time order) is decayed itself instead of the sums, which gives the same closed
form. Only event times are used, never the wall clock. Moving the reference time on to ``now``
multiplies every weight by the same factor, so mean and spread do not change with time alone;
only the effective weight ``weight_at(now)`` shrinks (how much evidence is left).
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec

DEFAULT_HALF_LIFE_S = 1800.0


class Decayed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Decayed count and sums of a series; ``n`` is the plain number of samples."""

    n: int = 0
    w: float = 0.0
    s1: float = 0.0
    s2: float = 0.0
    at: datetime | None = None

    @property
    def mean(self) -> float | None:
        """Decayed mean, None without samples."""
        return self.s1 / self.w if self.w > 0 else None

    @property
    def std(self) -> float | None:
        """Decayed standard deviation (population), None without samples."""
        if self.w <= 0:
            return None
        m = self.s1 / self.w
        return math.sqrt(max(self.s2 / self.w - m * m, 0.0))

    def weight_at(self, now: datetime, half_life_s: float) -> float:
        """The effective number of samples left at ``now``."""
        if self.at is None:
            return 0.0
        return self.w * factor((now - self.at).total_seconds(), half_life_s)


def factor(age_s: float, half_life_s: float) -> float:
    """Weight of a sample ``age_s`` seconds old."""
    return float(2.0 ** (-max(age_s, 0.0) / half_life_s))


def add(d: Decayed, x: float, at: datetime, half_life_s: float) -> Decayed:
    """``d`` with one more sample ``x`` taken at ``at``."""
    prev = d.at
    if prev is None:
        f = 0.0
    elif at >= prev:
        # `factor` inline (a hot path): the age is >= 0 here, so its clamp changes nothing
        f = 2.0 ** (-(at - prev).total_seconds() / half_life_s)
    else:
        g = 2.0 ** (-(prev - at).total_seconds() / half_life_s)
        return Decayed(n=d.n + 1, w=d.w + g, s1=d.s1 + g * x, s2=d.s2 + g * x * x, at=prev)
    return Decayed(n=d.n + 1, w=d.w * f + 1.0, s1=d.s1 * f + x, s2=d.s2 * f + x * x, at=at)


def add_pair(a: Decayed, xa: float, b: Decayed, xb: float, at: datetime, half_life_s: float) -> tuple[Decayed, Decayed]:
    """`add` of ``xa`` to ``a`` and of ``xb`` to ``b``, both taken at ``at``: the decay factor is
    computed once when both were last updated at the same time (the usual case: a node's
    efficiency and success rate learn from the same completions). Same values as two `add`s."""
    prev = a.at
    if prev != b.at:
        return add(a, xa, at, half_life_s), add(b, xb, at, half_life_s)
    if prev is None:
        f = 0.0
    elif at >= prev:
        f = 2.0 ** (-(at - prev).total_seconds() / half_life_s)
    else:
        g = 2.0 ** (-(prev - at).total_seconds() / half_life_s)
        return (
            Decayed(n=a.n + 1, w=a.w + g, s1=a.s1 + g * xa, s2=a.s2 + g * xa * xa, at=prev),
            Decayed(n=b.n + 1, w=b.w + g, s1=b.s1 + g * xb, s2=b.s2 + g * xb * xb, at=prev),
        )
    return (
        Decayed(n=a.n + 1, w=a.w * f + 1.0, s1=a.s1 * f + xa, s2=a.s2 * f + xa * xa, at=at),
        Decayed(n=b.n + 1, w=b.w * f + 1.0, s1=b.s1 * f + xb, s2=b.s2 * f + xb * xb, at=at),
    )

"""Adaptive timeouts: a task type's timeout, when the graph fixes none, follows its learned
duration (pure).

The node-scores view learns each task type's decayed mean and spread of successful run durations
(`TypeEstimate.duration`) and, from a task whose attempt timed out and whose retry then succeeded
taking longer, the longest such run (``proven_s``: the timeout was too short). Once a type has
``min_samples`` successes, a dispatch of a task of that type without a timeout of its own gets

    learned = max(mean × min_ratio, mean + k × spread) × (1 + 1/√n)
    timeout = clamp(max(learned, proven_s × loosen), floor_s, ceiling_s)

so it tightens as the evidence grows (the last factor tends to 1; the spread settles) and
loosens after a timeout a retry proved too short. A retry after a timeout gets at least
``retry_timeout_factor`` times the duration the timed-out attempt ran. The timeout used is in
the dispatch (``timeout_s``, and ``timeout_rule`` in words); the agent kills the run at it.
A task with no type learns nothing here (untyped tasks share no duration).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from projections.node_scores.entries import TypeEstimate
from projections.readiness.entries import TaskView


@dataclass(frozen=True)
class TimeoutConfig:
    """Knobs of the learned timeouts (``[decider.timeouts]``)."""

    enabled: bool = True
    k: float = 6.0  # spreads above the mean
    min_ratio: float = 3.0  # at least this many times the mean (a type whose runs all take the same)
    min_samples: int = 10  # successes of the type before its timeout is learned
    floor_s: float = 600.0  # never below (a build step that is slow once is not hung)
    ceiling_s: float = 6 * 3600.0
    loosen: float = 1.5  # times the longest run that proved a timeout too short

    def __post_init__(self) -> None:
        if not 0.0 < self.floor_s <= self.ceiling_s:
            raise ValueError(f"timeouts: need 0 < floor_s ({self.floor_s}) <= ceiling_s ({self.ceiling_s})")


def learned_timeout(
    task: TaskView, types: Mapping[str, TypeEstimate], tc: TimeoutConfig, retry_factor: float
) -> tuple[float, str] | None:
    """The timeout a run of ``task`` gets from its type's history and the words saying how, or
    None (the task fixes its own, the rule is off, or its type has too few successes)."""
    if not tc.enabled or task.timeout_s is not None or not task.type:
        return None
    est = types.get(task.type)
    d = est.duration if est is not None else None
    if d is None or d.n < tc.min_samples or d.mean is None:
        return None
    mean, spread = d.mean, d.std or 0.0
    learned = max(mean * tc.min_ratio, mean + tc.k * spread) * (1.0 + 1.0 / math.sqrt(d.n))
    why = f"type {task.type}: mean {mean:.2f}s + {tc.k:g}x spread {spread:.2f}s over {d.n} runs -> {learned:.1f}s"
    proven = est.proven_s * tc.loosen if est is not None else 0.0
    if proven > learned:
        learned = proven
        why += f"; a timeout proved too short at {est.proven_s:.1f}s (x{tc.loosen:g})" if est else ""
    if task.failure_kind == "timeout" and task.duration_s:
        retry = task.duration_s * retry_factor
        if retry > learned:
            learned, why = retry, why + f"; retry after timing out at {task.duration_s:.1f}s (x{retry_factor:g})"
    value = min(max(learned, tc.floor_s), tc.ceiling_s)
    if value != learned:
        why += f", clamped to [{tc.floor_s:g}, {tc.ceiling_s:g}]s"
    return round(value, 3), why

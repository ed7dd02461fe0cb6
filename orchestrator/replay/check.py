"""`replay --check` (`check`): every recorded decision re-run, in one process or, split into
contiguous ranges, on several.

Each range is checked by `orchestrator.replay.decisions.check_range` exactly as a single process checks
the whole log: its own folds from the first message, the real ``decide`` at each decision of the
range with the views at the recorded sequences. Only the work is divided, never what is checked.
A later range folds a longer prefix before its first decision, so the ranges are cut to balance
fold work (one unit per message folded) against decide work (`DECIDE_WEIGHT` units per
decision): later ranges get fewer decisions. The first range runs in the calling process, the
others in processes forked from it (they share the messages without copying them); their
reports are summed in log order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import Any

from orchestrator.decision.decide import DeciderConfig
from orchestrator.replay.decisions import GENERATION_SUBJECTS, check_range, is_decision_subject
from orchestrator.replay.replayer import Stored

DECIDE_WEIGHT = 6.0  # a decision costs about as much as folding six messages (measured: ~160 µs vs ~27 µs)
MIN_DECISIONS_PER_JOB = 1000  # fewer, and a process is not worth forking
_shared: Sequence[Stored] | None = None  # the messages, inherited by the forked processes


def split(messages: Sequence[Stored], until: int | None, jobs: int) -> list[tuple[int, int]]:
    """Contiguous ranges of message indices covering the log, one per process (a single range
    when one process is asked for, there are too few decisions, or fork is not available)."""
    whole = [(0, len(messages))]
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return whole
    positions = [
        i
        for i, m in enumerate(messages)
        if (until is None or m.seq <= until)
        and (is_decision_subject(m.subject) or m.subject.endswith(GENERATION_SUBJECTS))
    ]
    jobs = min(jobs, len(positions) // MIN_DECISIONS_PER_JOB)
    if jobs <= 1:
        return whole
    cuts = _balanced_cuts(positions, jobs, DECIDE_WEIGHT)
    bounds = [0] + [positions[c - 1] + 1 for c in cuts[:-1]] + [len(messages)]
    return list(zip(bounds, bounds[1:], strict=False))


def _balanced_cuts(positions: list[int], jobs: int, weight: float) -> list[int]:
    """Where each range of decisions ends (exclusive ranks), at most ``jobs`` ranges, minimising
    the largest cost: the messages a range folds (up to its last decision) + ``weight`` × its decisions."""

    def cuts_within(limit: float) -> list[int] | None:
        out: list[int] = []
        start, n = 0, len(positions)
        while start < n:
            lo, hi = start, n  # the largest end with positions[end - 1] + weight × (end - start) <= limit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if positions[mid - 1] + weight * (mid - start) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            if lo == start or len(out) == jobs:
                return None
            out.append(lo)
            start = lo
        return out

    low, high = 0.0, positions[-1] + weight * len(positions)
    best = cuts_within(high)
    assert best is not None
    for _ in range(40):
        mid = (low + high) / 2
        found = cuts_within(mid)
        if found is None:
            low = mid
        else:
            best, high = found, mid
    return best


def _check(lo: int, hi: int, until: int | None, graph: str | None, base: Any = None) -> dict[str, Any]:
    assert _shared is not None
    return check_range(_shared, lo, hi, until=until, graph=graph, base=base)


def run(
    messages: Sequence[Stored],
    ranges: list[tuple[int, int]],
    until: int | None,
    graph: str | None,
    base: Any = None,
) -> dict[str, Any]:
    """Check each range (the first here, the others in forked processes) and sum the reports."""
    global _shared
    _shared = messages
    try:
        with multiprocessing.get_context("fork").Pool(len(ranges) - 1) as pool:
            pending = [pool.apply_async(_check, (lo, hi, until, graph, base)) for lo, hi in ranges[1:]]
            parts = [check_range(messages, *ranges[0], until=until, graph=graph, base=base)]
            parts += [p.get() for p in pending]
    finally:
        _shared = None
    report: dict[str, Any] = {"decisions": 0, "reproduced": 0, "mismatches": [], "generations": 0}
    report |= {"view_rebuilds": 0, "rounds": 0}
    for part in parts:
        for k, v in part.items():
            report[k] = report[k] + v
    report["jobs"] = len(ranges)
    return report


def check(
    messages: Sequence[Stored],
    *,
    until: int | None = None,
    graph: str | None = None,
    jobs: int = 1,
    base: DeciderConfig | None = None,
) -> dict[str, Any]:
    """Re-run every recorded decision (optionally of one graph, up to ``until``) and compare.

    With ``jobs`` > 1 (and enough decisions to be worth a process, and fork available) the
    decisions are split into contiguous ranges checked by forked processes at once
    (`run`), each folding the log from the start on its own; the report is the same.
    ``base``: the config the decider ran with (``niyantra decider --config``; its thresholds are
    not in the log); each decision's own decider id, version and policy replace its fields."""
    ranges = split(messages, until, jobs)
    if len(ranges) > 1:
        return run(messages, ranges, until, graph, base)
    return check_range(messages, 0, len(messages), until=until, graph=graph, base=base) | {"jobs": 1}

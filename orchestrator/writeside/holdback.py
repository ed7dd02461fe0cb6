"""The write side's reading of a generated task's ``before``: which tasks it held back.

When a `TasksGenerated` is folded, readiness (and `verify`) hold back each ``before`` task that
is unfinished and still waiting for a dependency: it waits for the new task too (unless the new
task is born cancelled, its dependency having failed). Those folds read the log in order, so
they judge it by the tasks' states at that moment. The write side reads one aggregate at a time,
so it judges the same condition at the generation's log position (`Hold.at`) from the positions
its records carry: where each task ended (`TaskRecord.ended_at`) and where the graph was
cancelled. Pure; imports the task rules and the lifecycle only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from orchestrator.decision import lifecycle as lc
from orchestrator.writeside.taskrules import FINAL, TaskRecord, dependency_order

ENDED_BADLY = ("failed", "cancelled")


class Hold(msgspec.Struct, frozen=True):
    """A generated task, the tasks it is to hold back, and its generation's log position."""

    task: str
    before: tuple[str, ...]
    at: int


def held_back(records: Mapping[str, TaskRecord], holds: Iterable[Hold], cancelled_at: int = 0) -> dict[str, TaskRecord]:
    """``records`` with each held task's dependencies extended by the generated tasks holding it
    (in generation order: a hold can only see the holds before it)."""
    recs = dict(records)
    for h in sorted(holds, key=lambda h: h.at):
        g = recs.get(h.task)
        if g is None:
            continue
        ends = end_positions(recs, cancelled_at)
        if any(_ended_before(ends, d, h.at, ENDED_BADLY) for d in g.spec.depends_on):
            continue  # born cancelled: it holds nothing back
        for b in dict.fromkeys(h.before):
            r = recs.get(b)
            if r is None or h.task in r.spec.depends_on or _ended_before(ends, b, h.at, (*FINAL,)):
                continue
            if lc.closes_cycle(lambda k: recs[k].spec.depends_on if k in recs else (), h.task, b):
                continue
            if all(_ended_before(ends, d, h.at, ("succeeded",)) for d in r.spec.depends_on if d in recs):
                continue  # released already: no dependency to wait for
            deps = (*r.spec.depends_on, h.task)
            recs[b] = msgspec.structs.replace(r, spec=msgspec.structs.replace(r.spec, depends_on=deps))
    return recs


def end_positions(records: Mapping[str, TaskRecord], cancelled_at: int = 0) -> dict[str, tuple[int, str]]:
    """Where and how each ended task ended as the views show it: its own end, or the first
    failure or cancel of a dependency, or the graph's cancel, whichever came first."""
    out: dict[str, tuple[int, str]] = {}
    for tid in dependency_order(records):
        r = records[tid]
        ends = [(r.ended_at, r.state)] if r.state in FINAL else []
        ends += [(out[d][0], "cancelled") for d in r.spec.depends_on if d in out and out[d][1] in ENDED_BADLY]
        if cancelled_at:
            ends.append((cancelled_at, "cancelled"))
        if ends:
            out[tid] = min(ends)
    return out


def _ended_before(ends: Mapping[str, tuple[int, str]], tid: str, at: int, how: tuple[str, ...]) -> bool:
    end = ends.get(tid)
    return end is not None and end[0] < at and end[1] in how

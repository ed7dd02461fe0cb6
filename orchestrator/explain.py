"""Explaining a task from its events: every decision with its candidates, and the timeline.

Pure: the input is the task's ``(seq, event)`` pairs as the stream holds them; the output is
plain data that the CLI renders as text or JSON. Nothing here reads a view: the log alone
says why a task went where it went.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas import events as ev


def decision_record(seq: int, d: ev.TaskDispatched) -> dict[str, Any]:
    """One dispatch decision, as `explain --json` prints it."""
    return {
        "seq": seq,
        "at": d.occurred_at.isoformat(),
        "graph": d.graph_id,
        "task": d.task_id,
        "attempt": d.attempt,
        "phase": d.phase,
        "node": d.node_id,
        "strategy": d.strategy,
        "policy": d.policy,
        "confidence": d.confidence,
        "autonomy": d.autonomy,
        "world_hash": d.world_hash,
        "view_seqs": dict(d.view_seqs),
        "decider": d.decider_id,
        "decider_version": d.decider_version,
        "now": d.now.isoformat() if d.now else None,
        "expected_duration_s": d.expected_duration_s,
        "candidates": [
            {
                "node": c.node_id,
                "score": c.score,
                "eligible": c.eligible,
                "selected": c.node_id == d.node_id,
                "reason": c.reason,
            }
            for c in d.candidates
        ],
    }


def summary(e: ev.AnyEvent) -> str:
    """One line saying what an event means, for timelines and `niyantra events`."""
    match e:
        case ev.GraphSubmitted():
            return f"graph {e.graph_id} submitted: {len(e.tasks)} tasks" + (
                f" (1 of {e.parts} parts)" if e.parts > 1 else ""
            )
        case ev.TaskDispatched():
            what = "preflight" if e.phase == "preflight" else f"attempt {e.attempt}"
            extra = f", strategy {e.strategy}" if e.strategy else ""
            return f"{what} dispatched to {e.node_id} ({len(e.candidates)} candidates, policy {e.policy}{extra})"
        case ev.TaskStarted():
            return f"attempt {e.attempt} started on {e.node_id}" + (f" (pid {e.pid})" if e.pid else "")
        case ev.TaskCompleted():
            what = "preflight" if e.phase == "preflight" else f"attempt {e.attempt}"
            tail = f", exit {e.exit_code}" if e.exit_code is not None else ""
            err = f": {e.error}" if e.error else ""
            return f"{what} {e.outcome} on {e.node_id} after {e.duration_s:.2f}s{tail}{err}"
        case ev.TaskLost():
            return f"attempt {e.attempt} lost on {e.node_id}: {e.reason}"
        case ev.TaskCancelled() | ev.GraphCancelled() | ev.TaskApproved() | ev.TaskRejected():
            verb = type(e).__name__.removeprefix("Task").removeprefix("Graph").lower()
            return f"{verb} by {e.by}" + (f": {e.reason}" if e.reason else "")
        case ev.NodeRegistered():
            return f"node {e.node_id} registered: {e.slots} slots, labels {e.labels or '{}'}"
        case ev.NodeObserved():
            return (
                f"cpu {e.cpu_percent:.0f}%, mem {e.memory_percent:.0f}%, load {e.load1:.2f}, {e.running_tasks} running"
            )
        case ev.NodeLost() | ev.Unschedulable():
            return e.reason
        case ev.AutonomyChanged():
            return f"autonomy {e.previous or '?'} -> {e.level}: {e.reason}"
        case _:
            return type(e).__name__


def subject_of(e: ev.AnyEvent) -> str:
    """``graph/task`` or ``node`` an event is about, for one-line listings."""
    g, t, n = (getattr(e, k, None) for k in ("graph_id", "task_id", "node_id"))
    if g and t:
        return f"{g}/{t}"
    return str(g or n or "")


def explain(events: Iterable[tuple[int, ev.AnyEvent]]) -> dict[str, Any]:
    """Every decision about a task in order, and the timeline of everything that happened to it."""
    decisions: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for seq, e in events:
        if isinstance(e, ev.TaskDispatched):
            decisions.append(decision_record(seq, e))
        timeline.append({"seq": seq, "at": e.occurred_at.isoformat(), "type": type(e).__name__, "what": summary(e)})
    return {"decisions": decisions, "timeline": timeline}

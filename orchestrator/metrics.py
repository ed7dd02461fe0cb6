"""The article's "Real Numbers" table, computed from the log by a pure function.

Input: ``(seq, stored_at, event)`` in stream order (from the archive or the stream). Rules:

- graphs_completed: graphs whose every task reached a terminal state (the readiness fold);
- tasks_generated: tasks of graphs that niyantra submitted itself (``submitted_by`` starts
  with ``niyantra:``: follow-up rules and the backlog);
- first_attempt_success_rate: of tasks whose first run attempt ended, the share that succeeded;
- success_after_retry_rate: of tasks whose first attempt failed or was lost, the share that
  later succeeded;
- decision latency (view change to dispatch appended): a dispatch's stored time minus the stored
  time of the newest event its views reflected (the largest of its ``view_seqs``; without them,
  the event that made the task ready, ``causation_id`` ``readiness@SEQ``), average and p99, ms;
- graph depth: tasks on the longest chain, average and max over graphs;
- node_utilization: busy slot-seconds (start to end of each attempt) over available
  slot-seconds (registered slots × the span from the first dispatch to the last completion);
- human_interventions_per_week: approvals, rejections, cancels, drains and autonomy changes
  made by a person, per 7 days of the log's span (the plain count when it spans less).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from orchestrator.graphshape import graph_shape
from orchestrator.submission import GraphAssembly
from projections.readiness import ReadinessView, evolve_readiness
from schemas import events as ev

HUMAN = (ev.TaskApproved, ev.TaskRejected, ev.TaskCancelled, ev.GraphCancelled, ev.NodeDrainRequested)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


class _Tally:
    def __init__(self) -> None:
        self.stored: dict[int, datetime] = {}
        self.first_outcome: dict[tuple[str, str], str] = {}
        self.succeeded: set[tuple[str, str]] = set()
        self.latencies: list[float] = []
        self.depths: list[int] = []
        self.generated = 0
        self.starts: dict[tuple[str, str, int], datetime] = {}
        self.busy: dict[str, float] = {}
        self.slots: dict[str, int] = {}
        self.first_dispatch: datetime | None = None
        self.last_end: datetime | None = None
        self.human = 0
        self.assembly = GraphAssembly()

    def graph(self, g: ev.GraphSubmitted) -> None:
        self.depths.append(graph_shape({t.id: t.depends_on for t in g.tasks}, {}).depth)
        if g.submitted_by.startswith("niyantra:"):
            self.generated += len(g.tasks)

    def dispatched(self, d: ev.TaskDispatched, at: datetime) -> None:
        if d.phase != "run":
            return
        self.first_dispatch = self.first_dispatch or at
        # the newest event the decision's views reflected (else the one that made the task ready)
        cause = max(d.view_seqs.values(), default=0) or _int((d.causation_id or "").partition("@")[2])
        if cause in self.stored:
            self.latencies.append((at - self.stored[cause]).total_seconds() * 1000)

    def ended(self, e: ev.TaskCompleted | ev.TaskLost, at: datetime) -> None:
        key = (e.graph_id, e.task_id)
        ok = isinstance(e, ev.TaskCompleted) and e.outcome != "failure"
        if isinstance(e, ev.TaskCompleted) and e.phase != "run":
            return
        if e.attempt == 1 and key not in self.first_outcome:
            self.first_outcome[key] = "success" if ok else "failure"
        if ok:
            self.succeeded.add(key)
        start = self.starts.pop((e.graph_id, e.task_id, e.attempt), None)
        if start is not None:
            self.busy[e.node_id] = self.busy.get(e.node_id, 0.0) + (at - start).total_seconds()
        self.last_end = at


def compute_metrics(rows: Iterable[tuple[int, datetime, ev.AnyEvent]]) -> dict[str, Any]:
    """The metrics of a log; every rate is None when there is nothing to divide by."""
    t = _Tally()
    view = ReadinessView()
    first_at: datetime | None = None
    last_at: datetime | None = None
    for seq, at, e in rows:
        t.stored[seq] = at
        first_at, last_at = first_at or at, at
        view = evolve_readiness(view, e, seq)
        view.touched.clear()
        match e:
            case ev.GraphSubmitted() | ev.GraphTasksAdded():
                whole = t.assembly.add(e)
                if whole is not None:
                    t.graph(whole)
            case ev.NodeRegistered():
                t.slots[e.node_id] = e.slots
            case ev.TaskDispatched():
                t.dispatched(e, at)
            case ev.TaskStarted():
                t.starts[(e.graph_id, e.task_id, e.attempt)] = at
            case ev.TaskCompleted() | ev.TaskLost():
                t.ended(e, at)
            case ev.AutonomyChanged(by=who) if who:
                t.human += 1
            case _ if isinstance(e, HUMAN):
                t.human += 1
    first_failed = [k for k, o in t.first_outcome.items() if o == "failure"]
    span = (t.last_end - t.first_dispatch).total_seconds() if t.first_dispatch and t.last_end else 0.0
    capacity = sum(t.slots.values()) * span
    weeks = ((last_at - first_at).total_seconds() / (7 * 86400)) if first_at and last_at else 0.0
    latency_avg = sum(t.latencies) / len(t.latencies) if t.latencies else None
    return {
        "graphs_submitted": len(view.graphs),
        "graphs_completed": sum(1 for g in view.graphs.values() if g.done),
        "tasks_generated": t.generated,
        "first_attempt_success_rate": _rate(
            sum(o == "success" for o in t.first_outcome.values()), len(t.first_outcome)
        ),
        "success_after_retry_rate": _rate(sum(k in t.succeeded for k in first_failed), len(first_failed)),
        "decision_latency_ms_avg": round(latency_avg, 3) if latency_avg is not None else None,
        "decision_latency_ms_p99": _percentile(t.latencies, 0.99),
        "decisions": len(t.latencies),
        "graph_depth_avg": round(sum(t.depths) / len(t.depths), 2) if t.depths else None,
        "graph_depth_max": max(t.depths, default=None),
        "node_utilization": round(sum(t.busy.values()) / capacity, 4) if capacity > 0 else None,
        "human_interventions": t.human,
        "human_interventions_per_week": round(t.human / weeks, 2) if weeks >= 1 else t.human,
    }

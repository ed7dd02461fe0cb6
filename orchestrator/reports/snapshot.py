"""The article's status snapshot, as data (pure): per graph its totals and every task with its state,
dependencies, node, estimated and elapsed time, what it waits for (with each blocker's expected
wait), where the next decision would send it, its priority, and why it is not running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.decision.decide import DeciderConfig, Views, plan
from orchestrator.decision.flags import flagged_patterns
from orchestrator.decision.scoring import node_efficiency, priority, task_estimate
from orchestrator.decision.why import why
from projections.readiness.fold import TaskView

TERMINAL = ("succeeded", "failed", "cancelled")


def _remaining(t: TaskView, views: Views, now: datetime, config: DeciderConfig) -> float | None:
    """Expected seconds until ``t`` succeeds, from where it stands (None when it cannot say)."""
    est, _ = task_estimate(t, views.types, config.scoring)
    if t.state == "succeeded":
        return 0.0
    if t.state in ("failed", "cancelled"):
        return None
    if t.state == "running" and t.started_at is not None and t.node is not None and t.node in views.nodes:
        eff, _ = node_efficiency(views.nodes[t.node], t.type, config.scoring)
        return max(est / eff - (now - t.started_at).total_seconds(), 0.0)
    return est


def task_row(
    t: TaskView, views: Views, now: datetime, config: DeciderConfig, scheduled: dict[Any, str]
) -> dict[str, Any]:
    """One task of the snapshot."""
    est, _ = task_estimate(t, views.types, config.scoring)
    elapsed = None
    if t.state == "running" and t.started_at is not None:
        elapsed = round((now - t.started_at).total_seconds(), 1)
    elif t.state in TERMINAL and t.duration_s is not None:
        elapsed = round(t.duration_s, 1)
    waiting = []
    for d in t.waiting_for:
        b = views.tasks.get((t.graph_id, d))
        left = _remaining(b, views, now, config) if b is not None else None
        waiting.append(
            {
                "id": d,
                "state": b.state if b else "unknown",
                "expected_wait_s": round(left, 1) if left is not None else None,
            }
        )
    row: dict[str, Any] = {
        "id": t.task_id,
        "title": t.title,
        "state": t.state,
        "depends_on": list(t.depends_on),
        "node": t.node,
        "attempt": t.attempt,
        "estimate_s": round(est, 1),
        "elapsed_s": elapsed,
        "waiting_for": waiting,
        "scheduled_node": scheduled.get((t.graph_id, t.task_id)),
        "priority": round(priority(t, now, config.scoring), 1) if t.state == "ready" else None,
        "depth": t.depth,
    }
    if t.origin:
        row["generated"] = t.origin  # a follow-up rule made this task: which, after what, why
    if t.state in ("ready", "pending"):
        row["why"] = why(t, views, now, config)["headline"]
    return row


def snapshot(views: Views, now: datetime, config: DeciderConfig, graph: str | None = None) -> list[dict[str, Any]]:
    """Every graph (or one) with its totals and task rows, tasks by depth then id."""
    dispatches, reserved = plan(views, now, config)
    scheduled: dict[Any, str] = {
        (d.event.graph_id, d.event.task_id): getattr(d.event, "node_id", "(cache hit)") for d in dispatches
    }
    scheduled.update({k: f"{n} (after ~{w:.0f}s)" for k, (n, w) in reserved.items()})
    by_graph: dict[str, list[TaskView]] = {}
    for (g, _), t in views.tasks.items():
        if graph is None or g == graph:
            by_graph.setdefault(g, []).append(t)
    out = []
    for g in sorted(by_graph):
        tasks = sorted(by_graph[g], key=lambda t: (t.depth, t.task_id))
        counts: dict[str, int] = {}
        for t in tasks:
            counts[t.state] = counts.get(t.state, 0) + 1
        totals = {
            "total": len(tasks),
            "completed": counts.get("succeeded", 0),
            "running": counts.get("running", 0) + counts.get("dispatched", 0),
            "ready": counts.get("ready", 0),
            "blocked": counts.get("pending", 0),
            "failed": counts.get("failed", 0) + counts.get("cancelled", 0),
        }
        out.append({"graph": g, "totals": totals, "tasks": [task_row(t, views, now, config, scheduled) for t in tasks]})
    return out


def totals_text(g: dict[str, Any]) -> str:
    """'Total tasks: 14 | Completed: 3 | Running: 2 | Ready: 4 | Blocked: 5' (and failed, if any)."""
    t = g["totals"]
    text = (
        f"Total tasks: {t['total']} | Completed: {t['completed']} | Running: {t['running']} | "
        f"Ready: {t['ready']} | Blocked: {t['blocked']}"
    )
    return text + (f" | Failed: {t['failed']}" if t["failed"] else "")


def feedback(views: Views, now: datetime, config: DeciderConfig) -> dict[str, Any]:
    """What the feedback loop holds now: the quality threshold, every flagged pattern, careful mode."""
    return {
        "quality_threshold": views.quality_threshold,
        "flagged": flagged_patterns(views.nodes, views.patterns, now, config.scoring),
        "careful": careful_line(views, now),
    }


def careful_line(views: Views, now: datetime) -> str | None:
    """Careful mode in one line while it lasts (`orchestrator.decision.careful`), else None."""
    c = views.careful
    if c is None:
        return None
    since = (now - c.since).total_seconds()
    return (
        f"careful mode for {since:.0f}s (confidence {views.confidence:.2f}; entered at {c.confidence:.2f} < "
        f"{c.threshold:.2f}): agents observe every {c.observe_interval_s:g}s, shortest estimate first"
    )

"""Whether a node can take a task at all this round (its availability), and why not in words.

Pure functions of a node's view, a task's labels and ``now``: lost, draining, not seen within
the TTL, or missing one of the task's labels. Free slots are the round's business
(`orchestrator.decision.slots`), not this module's.
"""

from __future__ import annotations

from datetime import datetime

from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView


def _alive(node: NodeView, now: datetime, ttl: float) -> tuple[bool, float]:
    if node.last_seen is None:
        return False, float("inf")
    age = (now - node.last_seen).total_seconds()
    return age <= ttl, age


def unavailable(task: TaskView, node: NodeView, now: datetime, ttl: float) -> str | None:
    """Why ``node`` cannot take ``task`` at all (slots aside), or None."""
    return node_down(node, now, ttl) or missing_labels(task, node)


def missing_labels(task: TaskView, node: NodeView) -> str | None:
    """The task's labels the node lacks, in words, or None."""
    if not task.labels:
        return None
    missing = sorted(f"{k}={v}" for k, v in task.labels.items() if node.labels.get(k) != v)
    return f"missing label {', '.join(missing)}" if missing else None


def node_down(node: NodeView, now: datetime, ttl: float) -> str | None:
    """Why ``node`` can take no task at all (lost, draining, not alive), or None."""
    if node.lost:
        return f"lost: {node.lost_reason}"
    if node.draining:
        return f"draining ({node.drain_reason})" if node.drain_reason else "draining"
    alive, age = _alive(node, now, ttl)
    if not alive:
        return f"not alive: last seen {age:.0f}s ago"
    return None

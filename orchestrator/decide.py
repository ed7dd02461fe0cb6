"""The decision core: ``decide(views, now, config) -> decisions``, pure and deterministic.

Walking-skeleton policy ("first-free"): ready tasks in priority order (explicit priority hint,
then direct dependents, then longest waiting, then ids); each goes to the live node with the
most free slots whose labels match (ties by node id). Every candidate node is recorded with
its score and the reason in words. Same views + same ``now`` + same config give the same
decisions byte for byte: no clock, no randomness, and every iteration is over sorted keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from orchestrator import __version__
from projections.node_scores import NodeView
from projections.readiness import TaskView
from schemas.events import Candidate, TaskDispatched

POLICY = "first-free"


@dataclass(frozen=True)
class DeciderConfig:
    """Knobs of the decision core."""

    node_ttl_s: float = 20.0
    decider_id: str = "decider"
    version: str = __version__
    max_dispatches: int = 1000


@dataclass(frozen=True)
class Views:
    """The read models a decision is computed from, and the stream sequences they reflect."""

    tasks: Mapping[tuple[str, str], TaskView]
    nodes: Mapping[str, NodeView]
    seqs: Mapping[str, int] = field(default_factory=dict)


class Dispatch(msgspec.Struct, frozen=True, kw_only=True):
    """A decision to append: the event, and the guard that makes a stale one fail."""

    event: TaskDispatched
    expected_seq: int
    version: int


def _alive(node: NodeView, now: datetime, ttl: float) -> tuple[bool, float]:
    if node.last_seen is None:
        return False, float("inf")
    age = (now - node.last_seen).total_seconds()
    return age <= ttl, age


def _candidate(task: TaskView, node: NodeView, free: int, now: datetime, ttl: float) -> Candidate:
    if node.lost or node.draining:
        why = f"lost: {node.lost_reason}" if node.lost else f"draining ({node.drain_reason})"
        return Candidate(node_id=node.node_id, score=0.0, reason=why, eligible=False)
    alive, age = _alive(node, now, ttl)
    if not alive:
        return Candidate(node_id=node.node_id, score=0.0, reason=f"not alive: last seen {age:.0f}s ago", eligible=False)
    missing = sorted(f"{k}={v}" for k, v in task.labels.items() if node.labels.get(k) != v)
    if missing:
        return Candidate(node_id=node.node_id, score=0.0, reason=f"missing label {', '.join(missing)}", eligible=False)
    if free <= 0:
        return Candidate(
            node_id=node.node_id, score=0.0, reason=f"no free slot ({node.slots}/{node.slots} busy)", eligible=False
        )
    score = round(free / max(node.slots, 1), 6)
    return Candidate(node_id=node.node_id, score=score, reason=f"{free} of {node.slots} slots free")


def priority_key(t: TaskView) -> tuple[int, int, str, str, str]:
    """Sort key of a ready task: higher hint, more dependents, longer waiting, then ids."""
    since = t.ready_since.isoformat() if t.ready_since else ""
    return (-(t.priority or 0), -len(t.dependents), since, t.graph_id, t.task_id)


def world_hash(views: Views, now: datetime) -> str:
    """Hash of exactly the inputs a decision used (ready tasks, nodes, their seqs, now)."""
    ready = sorted((g, t, v.seq) for (g, t), v in views.tasks.items() if v.state == "ready")
    nodes = sorted((n.node_id, n.seq, n.active) for n in views.nodes.values())
    blob = msgspec.json.encode([ready, nodes, sorted(views.seqs.items()), now.isoformat()])
    return hashlib.sha256(blob).hexdigest()[:16]


def decide(views: Views, now: datetime, config: DeciderConfig) -> list[Dispatch]:
    """Dispatch decisions for the ready tasks that a live, matching node has room for."""
    ready = sorted((t for t in views.tasks.values() if t.state == "ready"), key=priority_key)
    if not ready or not views.nodes:
        return []
    free = {n.node_id: n.slots - len(n.active) for n in views.nodes.values()}
    node_order = sorted(views.nodes)
    digest = world_hash(views, now)
    out: list[Dispatch] = []
    for task in ready:
        if len(out) >= config.max_dispatches:
            break
        candidates = tuple(_candidate(task, views.nodes[n], free[n], now, config.node_ttl_s) for n in node_order)
        eligible = [c for c in candidates if c.eligible]
        if not eligible:
            continue
        best = min(eligible, key=lambda c: (-c.score, c.node_id))
        free[best.node_id] -= 1
        out.append(_dispatch(task, best, candidates, views, now, config, digest))
    return out


def _dispatch(
    task: TaskView,
    best: Candidate,
    candidates: tuple[Candidate, ...],
    views: Views,
    now: datetime,
    config: DeciderConfig,
    digest: str,
) -> Dispatch:
    attempt = task.attempt + 1
    event = TaskDispatched(
        event_id=f"dispatch:{task.graph_id}:{task.task_id}:{attempt}",
        occurred_at=now,
        causation_id=f"readiness@{task.seq}",
        correlation_id=task.graph_id,
        graph_id=task.graph_id,
        task_id=task.task_id,
        node_id=best.node_id,
        attempt=attempt,
        command=task.command,
        timeout_s=task.timeout_s,
        expected_duration_s=task.estimate_s,
        candidates=candidates,
        confidence=1.0,
        autonomy="full",
        policy=POLICY,
        world_hash=digest,
        view_seqs=dict(sorted(views.seqs.items())),
        decider_id=config.decider_id,
        decider_version=config.version,
        now=now,
        env=task.env,
        scope=task.scope,
    )
    return Dispatch(event=event, expected_seq=task.last_seq, version=task.version + 1)

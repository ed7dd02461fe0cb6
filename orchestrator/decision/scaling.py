"""Scale idle nodes down (pure): a node idle past a threshold while no ready task matches its
labels gets a `NodeScaleDownProposed`, once per idle episode.

A node is idle when it holds no attempt; it has been idle since the end of its last attempt
(``NodeView.idle_since``, folded by the node-scores view), or since it registered when none has
ended. Each live node (not lost, not draining, seen within the node TTL) idle for at least
``idle_after_s`` is proposed for scale-down unless a ready task could run on it (its labels
match the node's: `orchestrator.decision.availability.missing_labels`). A proposal is recorded
once per episode: the view keeps the ``idle_since`` it was made for (``scale_down_for``), and a
new episode starts only when the node runs something again. The proposal is guarded by the
node's subject (``expected_seq``: its last event), so two deciders never both record it.

A proposal only: the decider's shell runs the ``[decider.scaling] command`` hook with it as JSON
(`orchestrator.processes.scalehook`); at full autonomy it says ``drain`` (the node may be drained).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from orchestrator.decision.availability import missing_labels, node_down
from orchestrator.decision.pause import Stamp
from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView
from schemas import actions as act
from schemas.ids import token


@dataclass(frozen=True)
class ScalingConfig:
    """Thresholds of scaling proposals (``[decider.scaling]``); off unless enabled."""

    enabled: bool = False
    idle_after_s: float = 300.0  # a node idle this long with no matching ready work is proposed for scale-down
    command: str = ""  # a shell command given each proposal as JSON on stdin ("": only record it)

    def __post_init__(self) -> None:
        if not self.idle_after_s > 0:
            raise ValueError(f"scaling: idle_after_s must be > 0, not {self.idle_after_s}")


class ScaleAction(msgspec.Struct, frozen=True, kw_only=True):
    """A scaling proposal to append, guarded by its node's last event."""

    event: act.NodeScaleDownProposed
    expected_seq: int


def idle_since(node: NodeView) -> datetime | None:
    """Since when the node has held no attempt (None: it holds one, or never registered)."""
    if node.active:
        return None
    return node.idle_since or node.registered_at


def scale_down_actions(
    nodes: Mapping[str, NodeView],
    ready: Sequence[TaskView],
    now: datetime,
    ttl: float,
    sc: ScalingConfig,
    stamp: Stamp,
    autonomy: str = "full",
) -> list[ScaleAction]:
    """The round's scale-down proposals, by node id."""
    if not sc.enabled:
        return []
    out: list[ScaleAction] = []
    for nid in sorted(nodes):
        node = nodes[nid]
        since = idle_since(node)
        if since is None or node.scale_down_for == since or node_down(node, now, ttl) is not None:
            continue
        idle = (now - since).total_seconds()
        if idle < sc.idle_after_s or any(missing_labels(t, node) is None for t in ready):
            continue
        drain = autonomy == "full"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "no labels"
        reason = f"idle {idle:.0f}s >= {sc.idle_after_s:.0f}s and no ready task matches its labels ({labels}): " + (
            "scale it down (it may be drained)" if drain else "scale it down"
        )
        e = act.NodeScaleDownProposed(
            event_id=f"scale-down:{token(nid)}:{since.isoformat()}",
            occurred_at=now,
            node_id=nid,
            idle_s=round(idle, 3),
            idle_since=since,
            idle_after_s=sc.idle_after_s,
            labels=dict(sorted(node.labels.items())),
            drain=drain,
            reason=reason,
            now=now,
            **msgspec.structs.asdict(stamp),
        )
        out.append(ScaleAction(event=e, expected_seq=node.subject_seq))
    return out

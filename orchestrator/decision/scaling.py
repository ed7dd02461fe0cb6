"""Scale idle nodes down, and up on sustained queueing (pure): a node idle past a threshold while
no ready task matches its labels gets a `NodeScaleDownProposed`, once per idle episode; ready
work waiting past a threshold beyond the free slots of the live nodes that match it gets a
`NodeScaleUpProposed`, once per queueing episode.

A node is idle when it holds no attempt; it has been idle since the end of its last attempt
(``NodeView.idle_since``, folded by the node-scores view), or since it registered when none has
ended. Each live node (not lost, not draining, seen within the node TTL) idle for at least
``idle_after_s`` is proposed for scale-down unless a ready task could run on it (its labels
match the node's: `orchestrator.decision.availability.missing_labels`). A proposal is recorded
once per episode: the view keeps the ``idle_since`` it was made for (``scale_down_for``), and a
new episode starts only when the node runs something again. The proposal is guarded by the
node's subject (``expected_seq``: its last event), so two deciders never both record it.

Scale up: a ready task is *queued* when it has been ready for at least ``queued_after_s``
(``TaskView.ready_since``), was not dispatched this round, and waits for nothing but a node (no
gate: backoff, approval, autonomy; its graph not paused). The queued tasks are grouped by the
labels they need; each group first fills the free slots (after this round's dispatches) of the
live nodes that match it, and what is left is beyond them: a `ScaleNeed` of that many tasks and
the nodes (of the matching nodes' slots, or the live nodes', else 1) that would run them at
once. The episode is the readiness view's ``Health.scale_up``: the proposal opens it, the ready
set emptying ends it; the proposal is guarded by ``Health.scale_up_seq`` (the last
``ev.system.scaling`` event). Tasks that flagged patterns escalated to approval count as queued.

A proposal only: the decider's shell runs the ``[decider.scaling] command`` hook with it as JSON
(`orchestrator.processes.scalehook`; ``up --autoscale`` is its local form); at full autonomy a
scale-down says ``drain`` (the node may be drained) and a scale-up ``start`` (nodes may be started).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from orchestrator.decision.availability import missing_labels, node_down
from orchestrator.decision.pause import Stamp
from projections.node_scores.fold import NodeView
from projections.readiness.entries import Health
from projections.readiness.fold import TaskView
from schemas import actions as act
from schemas.ids import token


@dataclass(frozen=True)
class ScalingConfig:
    """Thresholds of scaling proposals (``[decider.scaling]``); off unless enabled."""

    enabled: bool = False
    idle_after_s: float = 300.0  # a node idle this long with no matching ready work is proposed for scale-down
    queued_after_s: float = 60.0  # ready work waiting this long beyond the matching free slots is proposed for scale-up
    command: str = ""  # a shell command given each proposal as JSON on stdin ("": only record it)

    def __post_init__(self) -> None:
        if not self.idle_after_s > 0:
            raise ValueError(f"scaling: idle_after_s must be > 0, not {self.idle_after_s}")
        if not self.queued_after_s > 0:
            raise ValueError(f"scaling: queued_after_s must be > 0, not {self.queued_after_s}")


class ScaleAction(msgspec.Struct, frozen=True, kw_only=True):
    """A scaling proposal to append, guarded by its node's last event (a scale-down) or by the
    last scale-up proposal (``Health.scale_up_seq``)."""

    event: act.NodeScaleDownProposed | act.NodeScaleUpProposed
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


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"


Held = Callable[[TaskView], bool]  # a ready task waits for something besides a node (a gate, a pause)


def _never(t: TaskView) -> bool:
    return False


def queued_tasks(
    ready: Sequence[TaskView], now: datetime, after_s: float, taken: Collection[tuple[str, str]], held: Held
) -> list[TaskView]:
    """The ready tasks waiting for a node for at least ``after_s``: not ``taken`` this round, not ``held``."""
    out = []
    for t in ready:
        since = t.ready_since
        if since is None or (now - since).total_seconds() < after_s or (t.graph_id, t.task_id) in taken:
            continue
        if not held(t):
            out.append(t)
    return out


def needs_of(
    queued: Sequence[TaskView],
    nodes: Mapping[str, NodeView],
    now: datetime,
    ttl: float,
    taken_on: Mapping[str, int],
    one_per_node: bool = False,
) -> tuple[list[act.ScaleNeed], list[TaskView]]:
    """What the ``queued`` tasks need beyond the free slots of the live nodes that match them
    (``taken_on``: slots this round's dispatches took, by node), and the tasks beyond them."""
    live = [nodes[nid] for nid in sorted(nodes) if node_down(nodes[nid], now, ttl) is None]

    def slots(n: NodeView) -> int:
        return 1 if one_per_node else n.slots

    free = {n.node_id: max(slots(n) - len(n.active) - taken_on.get(n.node_id, 0), 0) for n in live}
    groups: dict[tuple[tuple[str, str], ...], list[TaskView]] = {}
    for t in queued:
        groups.setdefault(tuple(sorted(t.labels.items())), []).append(t)
    needs: list[act.ScaleNeed] = []
    beyond: list[TaskView] = []
    for key in sorted(groups):
        tasks = groups[key]
        fits = [n for n in live if missing_labels(tasks[0], n) is None]
        left = len(tasks)
        for n in fits:
            used = min(free[n.node_id], left)
            free[n.node_id] -= used
            left -= used
        if left <= 0:
            continue
        beyond += tasks[len(tasks) - left :]
        per = max((slots(n) for n in fits or live), default=1) or 1
        needs.append(act.ScaleNeed(labels=dict(key), tasks=left, nodes=-(-left // per), slots_per_node=per,
                                   live=len(fits)))  # fmt: skip
    return needs, beyond


def _need_words(n: act.ScaleNeed) -> str:
    what = f"{n.tasks} need {_labels(n.labels)}: {n.nodes} node(s) of {n.slots_per_node} slot(s)"
    return what + (f" like the {n.live} live one(s)" if n.live else ", which no live node has")


def scale_up_actions(
    nodes: Mapping[str, NodeView],
    ready: Sequence[TaskView],
    now: datetime,
    ttl: float,
    sc: ScalingConfig,
    stamp: Stamp,
    *,
    health: Health | None = None,
    taken: Mapping[tuple[str, str], str] | None = None,
    held: Held = _never,
    autonomy: str = "full",
) -> list[ScaleAction]:
    """The round's scale-up proposal (none, or one): ``taken`` is this round's dispatches (task →
    node; "" for a cache hit), ``held`` says which ready tasks wait for something besides a node."""
    if not sc.enabled or (health is not None and health.scale_up is not None):
        return []  # off, or this queueing episode was proposed already
    taken = taken or {}
    queued = queued_tasks(ready, now, sc.queued_after_s, taken, held)
    if not queued:
        return []
    taken_on: dict[str, int] = {}
    for nid in taken.values():
        if nid:
            taken_on[nid] = taken_on.get(nid, 0) + 1
    needs, beyond = needs_of(queued, nodes, now, ttl, taken_on, one_per_node=autonomy == "cautious")
    if not needs:
        return []
    since = min(t.ready_since for t in beyond if t.ready_since is not None)
    waited = (now - since).total_seconds()
    start = autonomy == "full"
    n_nodes = sum(n.nodes for n in needs)
    reason = (
        f"{len(beyond)} ready task(s) waited up to {waited:.0f}s >= {sc.queued_after_s:.0f}s beyond the free slots of "
        f"the live nodes that match them: {'; '.join(_need_words(n) for n in needs)}: scale up by {n_nodes} node(s)"
        + (" (they may be started)" if start else "")
    )
    e = act.NodeScaleUpProposed(
        event_id=f"scale-up:{now.isoformat()}",
        occurred_at=now,
        queued=len(beyond),
        queued_since=since,
        queued_s=round(waited, 3),
        queued_after_s=sc.queued_after_s,
        nodes=n_nodes,
        slots=sum(n.tasks for n in needs),
        needs=tuple(needs),
        start=start,
        reason=reason,
        now=now,
        **msgspec.structs.asdict(stamp),
    )
    return [ScaleAction(event=e, expected_seq=health.scale_up_seq if health is not None else 0)]

"""The node-scores view: each node's registration, last observation, liveness and load.

``evolve_node_scores`` is the pure fold; like readiness, it replaces frozen entries and notes
their KV keys in ``touched``. Liveness is not stored as a flag: it depends on ``now``, so the
decider derives it from ``last_seen`` (time is an input of the core, never read inside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from schemas import events as ev
from schemas.subjects import node_key


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """One node: capacity, labels, last reading, the attempts it holds, and simple counters."""

    node_id: str
    slots: int = 1
    labels: dict[str, str] = {}
    hostname: str = ""
    registered_at: datetime | None = None
    last_seen: datetime | None = None
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    load1: float = 0.0
    active: tuple[str, ...] = ()
    completed: int = 0
    failed: int = 0
    seq: int = 0


@dataclass
class NodeScoresView:
    """All nodes; ``seq`` is the last stream sequence applied."""

    nodes: dict[str, NodeView] = field(default_factory=dict)
    seq: int = 0
    touched: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)


def attempt_key(graph_id: str, task_id: str, attempt: int) -> str:
    """Identity of one task attempt held by a node."""
    return f"{graph_id}/{task_id}#{attempt}"


def _put(view: NodeScoresView, node: NodeView) -> None:
    view.nodes[node.node_id] = node
    view.touched.add(node_key(node.node_id))


def _node(view: NodeScoresView, node_id: str) -> NodeView:
    return view.nodes.get(node_id) or NodeView(node_id=node_id)


def evolve_node_scores(view: NodeScoresView, event: ev.AnyEvent, seq: int) -> NodeScoresView:
    """Apply one event (at stream sequence ``seq``) to the node-scores view."""
    if seq <= view.seq:
        return view
    replace = msgspec.structs.replace
    match event:
        case ev.NodeRegistered():
            n = _node(view, event.node_id)
            _put(
                view,
                replace(
                    n,
                    slots=event.slots,
                    labels=event.labels,
                    hostname=event.hostname,
                    registered_at=event.occurred_at,
                    last_seen=event.occurred_at,
                    seq=seq,
                ),
            )
        case ev.NodeObserved():
            n = _node(view, event.node_id)
            _put(
                view,
                replace(
                    n,
                    last_seen=event.occurred_at,
                    cpu_percent=event.cpu_percent,
                    memory_percent=event.memory_percent,
                    load1=event.load1,
                    seq=seq,
                ),
            )
        case ev.TaskDispatched():
            n = _node(view, event.node_id)
            key = attempt_key(event.graph_id, event.task_id, event.attempt)
            _put(view, replace(n, active=tuple(sorted({*n.active, key})), seq=seq))
        case ev.TaskCompleted():
            n = _node(view, event.node_id)
            key = attempt_key(event.graph_id, event.task_id, event.attempt)
            ok = event.outcome != "failure"
            _put(
                view,
                replace(
                    n,
                    active=tuple(a for a in n.active if a != key),
                    completed=n.completed + ok,
                    failed=n.failed + (not ok),
                    last_seen=event.occurred_at,
                    seq=seq,
                ),
            )
        case ev.TaskStarted() | ev.GraphSubmitted():
            pass
        case _:
            raise TypeError(f"node-scores: unhandled event type {type(event).__name__}")
    view.seq = seq
    return view


def node_values(view: NodeScoresView, keys: set[str]) -> dict[str, msgspec.Struct]:
    """The current value of each KV key in ``keys``."""
    return {k: view.nodes[k.partition(".")[2]] for k in keys}

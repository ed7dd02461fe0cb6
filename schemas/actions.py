"""The decider's actions beyond dispatch and cache hits: alerts, pausing and resuming a graph, proposing
to scale a node down or nodes up, entering and leaving careful mode. Imports schemas.eventbase and schemas.records."""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.eventbase import Event


class Alert(Event, frozen=True, kw_only=True):
    """Something needs a person: a kind, the subject it is about, and a message."""

    kind: str
    about: str = ""
    message: str


class GraphPaused(Event, frozen=True, kw_only=True):
    """New dispatches of a graph (``graph_id`` "": of every graph) stop: its decayed failure rate
    over recent completions crossed ``threshold`` (the decider), or a person paused it (``by``).
    A decision like a dispatch when the decider made it (view sequences, ``now``), re-run by
    ``replay --check``; it holds until a `GraphResumed`."""

    graph_id: str = ""
    rate: float = 0.0
    threshold: float = 0.0
    weight: float = 0.0  # the decayed number of completions the rate is over
    reason: str = ""
    by: str = ""  # a person; "" for the decider
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class NodeScaleDownProposed(Event, frozen=True, kw_only=True):
    """The decider proposes taking a node away: it has been idle (no attempt on it) for
    ``idle_s`` seconds, past ``idle_after_s``, while no ready task matches its labels. Once per
    idle episode (``idle_since``); a proposal only: the ``[decider.scaling] command`` hook (or
    ``up --autoscale``) acts on it. ``drain``: made at full autonomy, where the node may be drained.
    A decision like a dispatch (view sequences, ``now``), re-run by ``replay --check``."""

    node_id: str
    idle_s: float = 0.0
    idle_since: datetime | None = None
    idle_after_s: float = 0.0
    labels: dict[str, str] = {}
    drain: bool = False
    reason: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class ScaleNeed(msgspec.Struct, frozen=True, kw_only=True):
    """One kind of node a scale-up would add: the labels its waiting tasks need (``{}``: none),
    how many tasks wait for it, the nodes of ``slots_per_node`` slots that would run them all at
    once, and how many live nodes have those labels today (0: none has them)."""

    labels: dict[str, str] = {}
    tasks: int = 0
    nodes: int = 0
    slots_per_node: int = 1
    live: int = 0


class NodeScaleUpProposed(Event, frozen=True, kw_only=True):
    """The decider proposes adding nodes: ``queued`` ready tasks have waited past
    ``queued_after_s`` (the oldest since ``queued_since``) beyond the free slots of the live
    nodes that match them; ``needs`` says which nodes (labels, count, slots) would run them, and
    ``nodes``/``slots`` the totals. Once per queueing episode (it ends when no task is ready); a
    proposal only: the ``[decider.scaling] command`` hook (or ``up --autoscale``) acts on it.
    ``start``: made at full autonomy, where nodes may be started without a person. A decision
    like a dispatch (view sequences, ``now``), re-run by ``replay --check``."""

    queued: int = 0
    queued_since: datetime | None = None
    queued_s: float = 0.0
    queued_after_s: float = 0.0
    nodes: int = 0
    slots: int = 0
    needs: tuple[ScaleNeed, ...] = ()
    start: bool = False
    reason: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class GraphResumed(Event, frozen=True, kw_only=True):
    """A pause ends: the failure rate fell under the lower threshold (the decider, hysteresis) or a
    person resumed (``by``)."""

    graph_id: str = ""
    rate: float = 0.0
    threshold: float = 0.0
    reason: str = ""
    by: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class CarefulModeEntered(Event, frozen=True, kw_only=True):
    """Confidence fell under ``threshold``: the agents observe every ``observe_interval_s`` and
    dispatch prefers the tasks with the smallest estimate, until a `CarefulModeLeft` (a decision
    like a dispatch: view sequences, ``now``, re-run by ``replay --check``)."""

    confidence: float = 0.0
    threshold: float = 0.0
    observe_interval_s: float = 0.0  # the heartbeat (NodeObserved) interval the agents use meanwhile
    reason: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class CarefulModeLeft(Event, frozen=True, kw_only=True):
    """Confidence came back to ``threshold`` (higher than the one that entered: hysteresis): the
    agents return to their own observation interval and dispatch to its usual order."""

    confidence: float = 0.0
    threshold: float = 0.0
    reason: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None

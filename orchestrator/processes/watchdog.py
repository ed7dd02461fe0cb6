"""The watchdog: turns the passing of time into events, so every view is a function of the log.

``watch(views, now, config)`` is pure: from the node-scores, readiness and confidence views and
``now`` it lists the events to append:

- ``NodeLost`` for a node that has not registered or reported for its lease: ``missed``
  observations (default 3) of its announced interval (``NodeRegistered.observe_interval_s``,
  else ``observe_interval_s``, default 5 s);
- ``TaskLost`` for every attempt a lost node holds (dispatched or running there);
- ``PredictionExpired`` for an open prediction whose deadline has passed.

Every append is guarded, so any number of watchdogs (or a restarted one) never double-emit and
never act on a stale picture: ``NodeLost`` expects the node's last subject sequence (a report
that arrived meanwhile makes the server reject it), ``TaskLost`` expects the task's last
sequence (which also fences the late result of the lost attempt: the agent's completion is
guarded on the same subject tree), ``PredictionExpired`` expects the last sequence of the
prediction's own subject. Each also carries a deterministic ``Nats-Msg-Id``.
The shell mirrors the keys of the KV views it reads and calls ``watch`` every ``tick_s`` (1 s):
clock facts need no faster reaction, and a round over 100k tasks should not run on every view
write. It follows only the node-scores view's ``node.`` keys and the confidence view's
``prediction.`` keys, and the readiness view's ``task.`` keys only while some node is lost
(`HeldTasks`): the other keys, most of all the task entries written at every step of every task,
were taken in and decoded for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from orchestrator.errors import ConcurrencyConflict
from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.writeside.eventlog import EventLog
from projections.buckets import ensure_bucket
from projections.confidence.fold import Prediction
from projections.node_scores.fold import NodeView
from projections.readiness.fold import HELD, TaskView
from projections.viewmirror import ViewMirror
from schemas import events as ev
from schemas import subjects as S
from schemas.ids import task_ref

log = logging.getLogger("niyantra.watchdog")


@dataclass(frozen=True)
class WatchdogConfig:
    """Knobs of the watchdog (built at the edge from flags and environment)."""

    observe_interval_s: float = 5.0
    missed: int = 3
    watchdog_id: str = "watchdog"
    tick_s: float = 1.0
    max_per_round: int = 1000


@dataclass(frozen=True)
class WatchViews:
    """The views the watchdog reads."""

    nodes: Mapping[str, NodeView]
    tasks: Mapping[tuple[str, str], TaskView]
    predictions: Mapping[tuple[str, str], Prediction] = field(default_factory=dict)


class Emit(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append with its guard (expected last sequence of its aggregate)."""

    event: ev.NodeLost | ev.TaskLost | ev.PredictionExpired
    expected_seq: int
    version: int | None = None


def lease_s(node: NodeView, config: WatchdogConfig) -> float:
    """How long a node may stay silent before it is lost."""
    return (node.observe_interval_s or config.observe_interval_s) * config.missed


def _node_lost(n: NodeView, now: datetime, config: WatchdogConfig) -> Emit | None:
    if n.lost or n.last_seen is None:
        return None
    silent = (now - n.last_seen).total_seconds()
    lease = lease_s(n, config)
    if silent <= lease:
        return None
    event = ev.NodeLost(
        event_id=f"node-lost:{n.node_id}:{n.subject_seq}",
        occurred_at=now,
        causation_id=f"node-scores@{n.seq}",
        node_id=n.node_id,
        last_seen=n.last_seen,
        reason=f"missed {config.missed} observations: silent {silent:.1f}s, lease {lease:.1f}s ({config.watchdog_id})",
    )
    return Emit(event=event, expected_seq=n.subject_seq)


def _task_lost(t: TaskView, n: NodeView, now: datetime) -> Emit:
    event = ev.TaskLost(
        event_id=f"task-lost:{task_ref(t.graph_id, t.task_id)}:{t.attempt}:{t.last_seq}",
        occurred_at=now,
        causation_id=f"node-lost:{n.node_id}",
        correlation_id=t.graph_id,
        graph_id=t.graph_id,
        task_id=t.task_id,
        node_id=n.node_id,
        attempt=t.attempt,
        reason=f"node {n.node_id} lost ({n.lost_reason})",
    )
    return Emit(event=event, expected_seq=t.last_seq, version=t.version + 1)


def _expired(p: Prediction, now: datetime) -> Emit:
    event = ev.PredictionExpired(
        event_id=f"prediction-expired:{task_ref(p.graph_id, p.task_id)}:{p.attempt}",
        occurred_at=now,
        causation_id=f"confidence@{p.seq}",
        correlation_id=p.graph_id,
        graph_id=p.graph_id,
        task_id=p.task_id,
        node_id=p.node_id,
        attempt=p.attempt,
        deadline=p.deadline,
    )
    return Emit(event=event, expected_seq=p.subject_seq)


def watch(views: WatchViews, now: datetime, config: WatchdogConfig) -> list[Emit]:
    """The clock facts due at ``now``, in a deterministic order (nodes, tasks, predictions)."""
    out: list[Emit] = []
    for node_id in sorted(views.nodes):
        e = _node_lost(views.nodes[node_id], now, config)
        if e is not None:
            out.append(e)
    lost = {n for n, v in views.nodes.items() if v.lost}
    if lost:
        for key in sorted(views.tasks):
            t = views.tasks[key]
            if t.state in HELD and t.node in lost:
                out.append(_task_lost(t, views.nodes[t.node], now))
    for key in sorted(views.predictions):
        p = views.predictions[key]
        if p.status == "open" and now > p.deadline:
            out.append(_expired(p, now))
    return out[: config.max_per_round]


@dataclass
class WatchdogState:
    """What the shell counts: appended and rejected (someone else was first, or stale)."""

    appended: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rounds: int = 0


async def act(eventlog: EventLog, emits: list[Emit], state: WatchdogState) -> None:
    """Append each guarded event; a conflict or duplicate means it is already handled."""
    for e in emits:
        try:
            await eventlog.append_event(e.event, version=e.version, expected_seq=e.expected_seq)
        except ConcurrencyConflict as c:  # also DuplicateAppend: another watchdog, or the fact moved on
            state.rejected += 1
            log.debug("not appended %s: %s", e.event.event_id, c.detail)
            continue
        name = type(e.event).__name__
        state.appended[name] = state.appended.get(name, 0) + 1
        log.info("appended %s", e.event.event_id)


async def run_watchdog(
    url: str, stop: asyncio.Event, config: WatchdogConfig, *, on_ready: Any = None, state: WatchdogState | None = None
) -> WatchdogState:
    """Watch until ``stop`` is set (``state`` lets a caller follow the counters)."""
    nc = await nats_connect(url, name=config.watchdog_id, max_reconnect_attempts=-1)
    state = state if state is not None else WatchdogState()
    try:
        eventlog = EventLog(nc)
        await eventlog.ensure_stream()
        for bucket in S.VIEW_BUCKETS:
            await ensure_bucket(nc, bucket)
        nodes = ViewMirror(nc, S.KV_NODE_SCORES, {"node": NodeView}, keys=NODE_KEYS)
        predictions = ViewMirror(nc, S.KV_CONFIDENCE, {"prediction": Prediction}, keys=PREDICTION_KEYS)
        open_predictions = OpenPredictions(predictions)
        tasks = HeldTasks(nc)
        for m in (nodes, predictions):
            await m.start()
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=config.tick_s)
            now = datetime.now(UTC)  # pure-ok: the shell reads the clock and passes it in
            await tasks.follow(any(v.lost for v in nodes.values.values()))
            views = _views(nodes, tasks.values(), open_predictions.open)
            await act(eventlog, watch(views, now, config), state)
            state.rounds += 1
        for m in (nodes, predictions):
            await m.stop()
        await tasks.follow(False)
    finally:
        await nc.close()
    return state


NODE_KEYS = ("node.>",)  # of the node-scores view: the nodes (not the type estimates or patterns)
PREDICTION_KEYS = ("prediction.>",)  # of the confidence view: the predictions (not the summary or nodes)


class HeldTasks:
    """The readiness view's task entries, followed only while some node is lost: they matter
    only for the `TaskLost` of a lost node's attempts, and following them always made the
    watchdog take in every write of the busiest view (~7 per task) to use none of it."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.mirror: ViewMirror | None = None

    async def follow(self, wanted: bool) -> None:
        """Start following (loaded once `ViewMirror.start` returns) or stop, as ``wanted``."""
        if wanted and self.mirror is None:
            self.mirror = ViewMirror(self.nc, S.KV_READINESS, {"task": TaskView}, keys=("task.>",))
            await self.mirror.start()
        elif not wanted and self.mirror is not None:
            await self.mirror.stop()
            self.mirror = None

    def values(self) -> Mapping[str, TaskView]:
        """The task entries by key (none while no node is lost)."""
        return self.mirror.values if self.mirror is not None else {}


class OpenPredictions:
    """The open predictions of the confidence mirror by (graph, task), kept value by value: a
    round looks only at these (`watch` expires no other), not at every prediction the view ever
    held, which grows with every task the instance ran."""

    def __init__(self, mirror: ViewMirror) -> None:
        self.open: dict[tuple[str, str], Prediction] = {}
        for key, value in mirror.values.items():
            self(key, None, value)
        mirror.on_value = self

    def __call__(self, key: str, old: Any, new: Any) -> None:
        if old is not None:
            self.open.pop((old.graph_id, old.task_id), None)
        if new is not None and new.status == "open":
            self.open[(new.graph_id, new.task_id)] = new


def _views(
    nodes: ViewMirror, tasks: Mapping[str, TaskView], predictions: Mapping[tuple[str, str], Prediction]
) -> WatchViews:
    return WatchViews(
        nodes={v.node_id: v for v in nodes.values.values()},
        tasks={(v.graph_id, v.task_id): v for v in tasks.values()},
        predictions=dict(predictions),
    )

"""The decider process: mirror the KV views, call the pure ``decide``, append guarded dispatches.

The process holds no state of its own beyond a cache of the views; a restart rebuilds it from
KV. It decides when a view changes (and at least every ``tick`` seconds, for liveness and
aging), and only on views that already reflect its own last append, so it never decides twice
on the same picture. A stale or duplicate dispatch (another decider won the race) is rejected
by the server through the task's expected-last-subject-sequence and simply dropped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from node_agent.artifacts.store import ArtifactStore
from orchestrator.decision.decide import DeciderConfig, Dispatch, Views, decide_round
from orchestrator.decision.pause import Action, alert_of
from orchestrator.decision.scaling import ScaleAction
from orchestrator.decision.signals import autonomy_change, unschedulable
from orchestrator.decision.slots import RoundMemo
from orchestrator.errors import ConcurrencyConflict, EventLogUnavailable
from orchestrator.processes import followup
from orchestrator.processes.cacheguard import verify_hits
from orchestrator.processes.deciderviews import TaskIndex, build_views
from orchestrator.processes.scalehook import start_hook
from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.writeside.eventlog import EventLog, event_append
from projections.buckets import ensure_bucket
from projections.confidence.fold import SUMMARY_KEY, ConfidenceSummary
from projections.node_scores.fold import NodeView, TypeEstimate
from projections.node_scores.patterns import PatternView
from projections.readiness.entries import MIRROR_TYPES
from projections.viewmirror import ViewMirror
from schemas import subjects as S
from schemas.actions import GraphPaused
from schemas.events import AutonomyChanged, TaskCacheHit

log = logging.getLogger("niyantra.decider")


@dataclass
class DeciderState:
    """What the shell remembers between rounds: the sequence of its own last append."""

    last_append_seq: int = 0
    dispatched: int = 0
    conflicts: int = 0
    signals: int = 0
    autonomy_level: str | None = None
    autonomy_seq: int = 0
    reported: set[tuple[str, str, str]] = field(default_factory=set)


MAX_IN_FLIGHT = 256  # dispatches of one round appended together, at most
FIRST_BATCH = 4  # a round's first batch: its first dispatches are not held up by a long round's bytes


def batches(n: int, first: int = FIRST_BATCH) -> list[tuple[int, int]]:
    """The (start, end) of a round's batches of ``n`` dispatches: ``first``, then each twice the
    one before (at most MAX_IN_FLIGHT), so a long round's first dispatches are appended at once
    and the round still costs only a few flushes. (Cache hits start at MAX_IN_FLIGHT: no agent
    waits for their acknowledgement, so fewer flushes is all that counts.)"""
    out: list[tuple[int, int]] = []
    i, size = 0, min(first, MAX_IN_FLIGHT)
    while i < n:
        out.append((i, min(n, i + size)))
        i, size = i + size, min(MAX_IN_FLIGHT, size * 2)
    return out


def waves(decisions: list[Dispatch]) -> list[list[Dispatch]]:
    """The round's decisions in the order they can be appended: first those that need nothing,
    then each level of cache hits whose keys the round's earlier hits completed (`Dispatch.needs`)."""
    level: dict[tuple[str, str], int] = {}
    out: list[list[Dispatch]] = []
    for d in decisions:
        n = 1 + max((level.get(k, 0) for k in d.needs), default=-1)
        level[(d.event.graph_id, d.event.task_id)] = n
        while len(out) <= n:
            out.append([])
        out[n].append(d)
    return out


async def act(eventlog: EventLog, decisions: list[Dispatch], state: DeciderState) -> list[int]:
    """Append the round's decisions, each with its own guard; a conflict means someone else
    decided first (counted, not an error). Returns the wall-clock time (ns) of each acknowledged
    append.

    A round's dispatches are about different tasks, each guarded by its own task's last
    sequence, so they go in atomic batches (`batches`: a few, growing, so the first dispatches
    are not held up by the rest of a long round): one flush of the durable stream per batch
    instead of one per dispatch. If any guard fails (another decider won a task) or the batch is
    refused, nothing of that batch was written and it is appended dispatch by dispatch instead,
    concurrently, each conflict counted on its own. Any other error is raised once every append
    of the round has settled. A cache hit that needs the round's earlier hits (`waves`) is
    appended after them, and not at all when one of them was not appended; a round of hits alone
    goes in one atomic batch, levels in order, when it fits in one.
    """
    acked: list[int] = []
    written: set[tuple[str, str]] = set()
    ordered = [d for wave in waves(decisions) for d in wave]
    if 1 < len(ordered) <= MAX_IN_FLIGHT and all(isinstance(d.event, TaskCacheHit) for d in ordered):
        # a round of hits only (an unchanged build): every level in one atomic batch, which holds
        # each hit after those it needs, and all or none of them (none: wave by wave, below)
        if await _act_atomic(eventlog, ordered, state, acked, written):
            return acked
    for wave in waves(decisions):
        hits = [d for d in wave if isinstance(d.event, TaskCacheHit) and all(k in written for k in d.needs)]
        dispatches = [d for d in wave if not isinstance(d.event, TaskCacheHit)]
        for part, first in ((hits, MAX_IN_FLIGHT), (dispatches, FIRST_BATCH)):
            for i, j in batches(len(part), first):
                chunk = part[i:j]
                if not (len(chunk) > 1 and await _act_atomic(eventlog, chunk, state, acked, written)):
                    await _act_each(eventlog, chunk, state, acked, written)
    return acked


async def _act_atomic(
    eventlog: EventLog, chunk: list[Dispatch], state: DeciderState, acked: list[int], written: set[tuple[str, str]]
) -> bool:
    items = [event_append(d.event, version=d.version, expected_seq=d.expected_seq) for d in chunk]
    try:
        seqs = await eventlog.append_atomic(items)
    except (ConcurrencyConflict, EventLogUnavailable) as e:
        log.info("round of %d dispatches appended one by one: %s", len(chunk), e)
        return False
    at = time.time_ns()  # pure-ok: the shell's own timings
    acked.extend([at] * len(seqs))
    state.last_append_seq = max(state.last_append_seq, *seqs)
    state.dispatched += len(seqs)
    for d in chunk:
        written.add((d.event.graph_id, d.event.task_id))
        _log_decision(d)
    return True


def _log_decision(d: Dispatch) -> None:
    e = d.event
    if isinstance(e, TaskCacheHit):
        log.info("cache hit %s/%s: %s", e.graph_id, e.task_id, e.reason)
    else:
        log.info("dispatched %s/%s attempt %d to %s", e.graph_id, e.task_id, e.attempt, e.node_id)


async def _act_each(
    eventlog: EventLog, chunk: list[Dispatch], state: DeciderState, acked: list[int], written: set[tuple[str, str]]
) -> None:
    async def one(d: Dispatch) -> None:
        try:
            seq = await eventlog.append_event(d.event, version=d.version, expected_seq=d.expected_seq)
        except ConcurrencyConflict as e:
            state.conflicts += 1
            log.info("dropped stale decision %s: %s", d.event.event_id, e.detail)
            return
        acked.append(time.time_ns())  # pure-ok: the shell's own timings
        written.add((d.event.graph_id, d.event.task_id))
        state.last_append_seq = max(state.last_append_seq, seq)
        state.dispatched += 1
        _log_decision(d)

    results = await asyncio.gather(*(one(d) for d in chunk), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def act_actions(
    eventlog: EventLog, actions: list[Action | ScaleAction], state: DeciderState, hook: str = ""
) -> None:
    """Append the round's pauses and resumes and careful-mode changes, each guarded by its scope's
    last event (a conflict: another decider or a person acted first; dropped), a pause with its
    `Alert`; and its scaling proposals, guarded by their node's last event, each handed to the
    ``hook`` command (`orchestrator.processes.scalehook`) once recorded."""
    for a in actions:
        try:
            seq = await eventlog.append_event(a.event, expected_seq=a.expected_seq)
        except ConcurrencyConflict as e:
            state.conflicts += 1
            log.info("dropped stale action %s: %s", a.event.event_id, e.detail)
            continue
        state.last_append_seq = max(state.last_append_seq, seq)
        state.signals += 1
        if isinstance(a, ScaleAction):
            log.warning("%s %s: %s", type(a.event).__name__, getattr(a.event, "node_id", "*"), a.event.reason)
            start_hook(eventlog, hook, a.event)
            continue
        log.warning("%s %s: %s", type(a.event).__name__, getattr(a.event, "graph_id", "") or "*", a.event.reason)
        if isinstance(a.event, GraphPaused):
            with contextlib.suppress(ConcurrencyConflict):  # the same alert's id twice: it is recorded
                await eventlog.append_event(alert_of(a.event))


async def read_autonomy(eventlog: EventLog, state: DeciderState) -> None:
    """The last recorded autonomy level and its subject sequence."""
    subject = f"{S.ROOT}.system.autonomy.AutonomyChanged"
    last = await eventlog.last_seq(subject)
    state.autonomy_seq = last
    if last:
        [(_, e)] = await eventlog.read_events(subject, after_seq=last - 1)
        state.autonomy_level = getattr(e, "level", None)


@dataclass
class Signals:
    """A round's non-dispatch decisions, computed with its views (before any await changes them)."""

    autonomy: list[Any] = field(default_factory=list)
    unschedulable: list[Any] = field(default_factory=list)


def signals_of(
    views: Views, now: datetime, config: DeciderConfig, decisions: list[Dispatch], state: DeciderState, scan: bool
) -> Signals:
    """Autonomy changes, and (when ``scan``) tasks ready too long without a dispatch."""
    out = Signals(autonomy=autonomy_change(views, now, state.autonomy_level))
    if scan:
        dispatched = [(d.event.graph_id, d.event.task_id) for d in decisions]
        out.unschedulable = unschedulable(views, now, config, dispatched, state.reported, config.unschedulable_after_s)
    return out


async def signal(eventlog: EventLog, signals: Signals, state: DeciderState) -> None:
    """Append autonomy changes (guarded: one decider records each change) and unschedulable tasks."""
    for e in signals.autonomy:
        try:
            if isinstance(e, AutonomyChanged):
                state.autonomy_seq = await eventlog.append_event(e, expected_seq=state.autonomy_seq)
                state.autonomy_level = e.level
                log.warning("autonomy %s: %s", e.level, e.reason)
            else:
                await eventlog.append_event(e)
            state.signals += 1
        except ConcurrencyConflict:
            await read_autonomy(eventlog, state)  # another decider recorded it first
            break
    for u in signals.unschedulable:
        try:
            await eventlog.append_event(u)
            state.signals += 1
            log.warning("unschedulable %s/%s: %s", u.graph_id, u.task_id, u.reason)
        except ConcurrencyConflict:
            pass  # a duplicate of another decider's report (same event id)


class Timings:
    """Where a round's time goes, one JSON line per round that dispatched, for benchmarks
    (``niyantra decider --timings PATH`` or ``NIYANTRA_DECIDER_TIMINGS=PATH``; off otherwise). Wall-clock nanoseconds:

    - ``view_at``: when the server stored the newest view checkpoint the decision used (the view
      change the decision answers), ``first_change_at``: the first checkpoint stored since the
      previous round (a change the decider may have had to wait on, for its own last append to
      show in the views, or for a round in progress);
    - ``woke``, ``decided``: the round's start and the end of its pure work; ``acked``: each
      dispatch's append acknowledgement;
    - ``stages``: the pure work's parts (ns): build the views, ``decide``, signals (``scan``: with
      the unschedulable scan), follow-up work.
    """

    def __init__(self, path: str | None) -> None:
        self.file = open(path, "a", buffering=1) if path else None  # noqa: SIM115 - closed by close()

    def record(self, **fields: Any) -> None:
        if self.file is not None:
            self.file.write(msgspec.json.encode(fields).decode() + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _ns(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1_000_000_000)


UNSCHEDULABLE_SCAN_S = 1.0  # how often a round also looks for tasks ready too long (a scan of every ready task)
SCANNED_PER_S = 20_000  # ready tasks the scan may look at per second: a long queue is scanned less often


def scan_interval(ready: int) -> float:
    """Seconds between two unschedulable scans with ``ready`` tasks ready (the scan costs a few
    microseconds a task; the threshold it checks is minutes, so a later scan loses nothing)."""
    return max(UNSCHEDULABLE_SCAN_S, ready / SCANNED_PER_S)


async def run_decider(
    url: str,
    stop: asyncio.Event,
    config: DeciderConfig,
    *,
    tick: float = 1.0,
    on_ready: Any = None,
    timings_path: str | None = None,
) -> DeciderState:
    """Decide until ``stop`` is set; with ``timings_path``, append each round's `Timings` there."""
    nc = await nats_connect(url, name=config.decider_id, max_reconnect_attempts=-1)
    state = DeciderState()
    changed = asyncio.Event()
    try:
        eventlog = EventLog(nc)
        await eventlog.ensure_stream()
        for bucket in S.VIEW_BUCKETS:
            await ensure_bucket(nc, bucket)
        tasks = ViewMirror(nc, S.KV_READINESS, dict(MIRROR_TYPES), changed)
        nodes = ViewMirror(
            nc, S.KV_NODE_SCORES, {"node": NodeView, "type": TypeEstimate, "pattern": PatternView}, changed
        )
        # of the confidence view only its summary (what decide reads) and checkpoint: not the
        # predictions and node records, written at each dispatch and completion
        confidence = ViewMirror(
            nc, S.KV_CONFIDENCE, {"summary": ConfidenceSummary}, changed, keys=(SUMMARY_KEY, S.CHECKPOINT_KEY)
        )
        await tasks.start()
        await nodes.start()
        await confidence.start()
        await read_autonomy(eventlog, state)
        index = TaskIndex(tasks, config.scoring)
        memo = RoundMemo()  # a node's facts and the words of candidates, reused while its scores are unchanged
        graphs = followup.GraphIndex(tasks)
        mirrors = (tasks, nodes, confidence)
        timings = Timings(timings_path)
        store = ArtifactStore(nc)  # a cache hit's blobs are looked at before it is appended
        last_scan = 0.0
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            if not changed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(changed, stop), timeout=tick)
            changed.clear()
            if min(tasks.seq, nodes.seq) < state.last_append_seq:
                continue  # the views do not yet show our own last decision
            if not (tasks.consistent and nodes.consistent and confidence.consistent):
                continue  # a view is mid-batch: its values are ahead of its checkpoint (replay needs both equal)
            woke = time.time_ns()  # pure-ok: the shell's own timings
            view_at = max((m.changed_at for m in mirrors if m.changed_at), default=None)
            first_at = min((m.first_change_at for m in mirrors if m.first_change_at), default=None)
            for m in mirrors:
                m.first_change_at = None
            now = datetime.now(UTC)  # pure-ok: the shell reads the clock and passes it in
            views = build_views(tasks, nodes, confidence, index, memo, graphs.graphs)
            built = time.time_ns()
            actions, decisions = decide_round(views, now, config)
            decided_at = time.time_ns()
            scan = time.monotonic() - last_scan >= scan_interval(len(index.ready))
            last_scan = time.monotonic() if scan else last_scan
            pending = signals_of(views, now, config, decisions, state, scan)
            signalled = time.time_ns()
            work = followup.plan(views, graphs.graphs, now, config, graphs.quiet)  # generated work (rules, backlog)
            del views  # shares the mirrors' live dicts: not valid after the next await
            decided = time.time_ns()
            if actions:
                await act_actions(eventlog, actions, state, config.scaling.command)
            if any(isinstance(d.event, TaskCacheHit) for d in decisions):
                decisions = await _verified(eventlog, decisions, store, now)
            acked = await act(eventlog, decisions, state)
            if decisions and timings.file is not None:
                timings.record(
                    n=len(decisions),
                    view_at=_ns(view_at),
                    first_change_at=_ns(first_at),
                    woke=woke,
                    stages=[built - woke, decided_at - built, signalled - decided_at, decided - signalled],
                    scan=scan,
                    decided=decided,
                    acked=acked,
                )
            await signal(eventlog, pending, state)
            await followup.append(eventlog, work, state)
        timings.close()
        await tasks.stop()
        await nodes.stop()
        await confidence.stop()
    finally:
        await nc.close()
    return state


async def _verified(eventlog: EventLog, decisions: list[Dispatch], store: Any, now: datetime) -> list[Dispatch]:
    """The round's decisions without the hits whose blobs do not verify; their entries are revoked."""
    keep, revoked = await verify_hits(decisions, store, now)
    for e in revoked:
        try:
            await eventlog.append_event(e)
        except ConcurrencyConflict:
            pass  # another decider revoked the same entry (same event id): it is revoked either way
    return keep


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

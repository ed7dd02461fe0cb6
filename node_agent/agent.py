"""The node agent process: register, observe, pull this node's dispatches, run them, report.

Every report is guarded by the task's expected-last-subject-sequence: TaskStarted must follow
the very dispatch the agent holds, and TaskCompleted must follow its own TaskStarted (a
preflight's result follows its dispatch). If the task moved on meanwhile (re-dispatched after
a loss, cancelled), the server rejects the report with `ConcurrencyConflict`: a stale attempt
never runs, and a late result is logged and dropped, never retried.

A dispatch this agent started and then lost (it died, or was stopped, while the task ran) is
reported as `TaskLost`, so the task runs again as a new attempt: at once when the agent is
stopped with SIGTERM, otherwise when the dispatch is redelivered after a restart (or by the
watchdog once the node's lease ran out, whichever comes first; both write the same event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from node_agent.artifacts.publish import TaskData
from node_agent.careful import CarefulFollower
from node_agent.control import Control
from node_agent.execution import Execution
from node_agent.intake import Intake, next_subject
from node_agent.logstore import LogStore
from node_agent.report import RunReport, completion, lost
from node_agent.settings import AgentSettings
from orchestrator import __version__
from orchestrator.errors import ConcurrencyConflict, DuplicateAppend, EventLogUnavailable
from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.writeside.eventlog import EventLog
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from schemas.errors import MalformedEvent
from schemas.ids import task_ref

log = logging.getLogger("niyantra.agent")
STOP_REPORT_TIMEOUT_S = 3.0
START_RETRY_S = 1.0  # a start not recorded (the stream electing a leader): redelivered this much later


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Running:
    """A dispatch this agent holds: its cancel switch and why it was cancelled."""

    dispatch: ev.TaskDispatched
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: list[str] = field(default_factory=list)


class Agent:
    """A running agent bound to one node id and one NATS connection."""

    def __init__(self, nc: Any, settings: AgentSettings) -> None:
        self.nc = nc
        self.s = settings
        self.log = EventLog(nc)
        self.logs = LogStore(nc)
        data = TaskData(nc, settings.execution.workdir, settings.node_id, settings.execution.layout)
        self.execution = Execution(settings.execution, settings.node_id, self.logs, data)
        self.active: dict[int, asyncio.Task[None]] = {}  # dispatch stream seq → handler
        self.running: dict[int, Running] = {}  # dispatch stream seq → what it runs
        consumer = S.agent_consumer(settings.node_id)
        self.intake = Intake(nc, next_subject(S.STREAM, consumer), settings.slots, self._launch)
        self.control = Control(self)
        self.careful = CarefulFollower(nc)  # careful mode's heartbeat interval, while it lasts

    @property
    def draining(self) -> bool:
        """True once a drain was requested: running work finishes, no more starts."""
        return self.control.draining

    async def register(self) -> None:
        """Append NodeRegistered with this node's capacity and labels."""
        vm = psutil.virtual_memory()
        await self.log.append_event(
            ev.NodeRegistered(
                event_id=f"register:{self.s.node_id}:{uuid.uuid4().hex}",
                occurred_at=_now(),
                node_id=self.s.node_id,
                slots=self.s.slots,
                labels=self.s.labels,
                hostname=socket.gethostname(),
                cpu_count=psutil.cpu_count() or 0,
                memory_bytes=vm.total,
                agent_version=__version__,
                observe_interval_s=self.s.observe_interval_s,
            )
        )

    async def observe(self) -> None:
        """Append one NodeObserved reading."""
        await self.log.append_event(
            ev.NodeObserved(
                event_id=f"observe:{self.s.node_id}:{uuid.uuid4().hex}",
                occurred_at=_now(),
                node_id=self.s.node_id,
                cpu_percent=psutil.cpu_percent(None),
                memory_percent=psutil.virtual_memory().percent,
                load1=os.getloadavg()[0],
                running_tasks=len(self.running),
                draining=self.draining,
                observe_interval_s=self.careful.interval(self.s.observe_interval_s),
            )
        )

    async def observe_forever(self, stop: asyncio.Event) -> None:
        """Append a NodeObserved reading every ``observe_interval_s`` seconds (in careful mode the
        shorter interval it asks for; a change of it is observed at once: `node_agent.careful`)."""
        psutil.cpu_percent(None)
        while not stop.is_set():
            await self.careful.wait(stop, self.s.observe_interval_s)
            if stop.is_set():
                return
            try:
                await self.observe()
            except EventLogUnavailable as e:  # the next reading will try again
                log.warning("observation not recorded: %s", e)

    async def ensure_consumer(self) -> str:
        """Create the node's durable pull consumer of dispatches unless it is there; its name."""
        durable = S.agent_consumer(self.s.node_id)
        config = ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject=S.dispatch_filter(self.s.node_id),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.s.ack_wait_s,
            max_ack_pending=max(64, self.s.slots * 4),
        )
        js = self.nc.jetstream()
        try:
            await js.consumer_info(S.STREAM, durable)
        except nats.js.errors.NotFoundError:
            await js.add_consumer(S.STREAM, config=config)
        return durable

    async def subscribe(self) -> Any:
        """The node's durable pull consumer of dispatches, as a nats-py pull subscription."""
        durable = await self.ensure_consumer()
        return await self.nc.jetstream().pull_subscribe_bind(durable=durable, stream=S.STREAM)

    def _decode(self, msg: Any) -> ev.TaskDispatched | None:
        seq = msg.metadata.sequence.stream
        try:
            d = codec.decode(msg.data, subject=msg.subject, seq=seq)
        except MalformedEvent as e:
            log.warning("skipped %s", e)
            return None
        if not isinstance(d, ev.TaskDispatched) or d.node_id != self.s.node_id:
            log.warning("skipped seq %d: not a dispatch for %s", seq, self.s.node_id)
            return None
        return d

    async def handle(self, seq: int) -> None:
        """Start, run and report the dispatch held under stream sequence ``seq``; ack it once its
        outcome is recorded. Until then `Intake` beats it in progress, and a delivery of it that
        comes again replaces the one acked here (`Intake.take`)."""
        msg = self.intake.delivery[seq]
        d = self._decode(msg)
        if d is None:
            await self.intake.delivery[seq].term()
            return
        version = int((msg.headers or {}).get(S.HDR_ORIGINATOR_VERSION, "0"))
        run = self.running[seq] = Running(d)
        try:
            await self._handle(d, run, seq, version)
        finally:
            self.running.pop(seq, None)
        if self.intake.release(seq):  # ask for the next dispatch now: one write with the ack
            with contextlib.suppress(nats.errors.Error):  # reconnecting: the pull loop asks again
                await self.intake.top_up()

    async def _ack(self, seq: int) -> None:
        await self.intake.delivery[seq].ack()

    async def _handle(self, d: ev.TaskDispatched, run: Running, seq: int, version: int) -> None:
        if self.draining:
            await self._report_lost(d, "node draining: the dispatch was not started", seq, version + 1)
            await self._ack(seq)
            return
        if await self.control.graph_cancelled(d.graph_id):
            run.cancel.set()
            run.reason.append(f"graph {d.graph_id} was cancelled")
        guard, result_version = seq, version + 1
        if d.phase == "run":
            started = ev.TaskStarted(
                event_id=f"start:{task_ref(d.graph_id, d.task_id)}:{d.attempt}",
                occurred_at=_now(),
                causation_id=d.event_id,
                correlation_id=d.graph_id,
                graph_id=d.graph_id,
                task_id=d.task_id,
                node_id=d.node_id,
                attempt=d.attempt,
                pid=os.getpid(),
            )
            try:
                guard = await self.log.append_event(started, version=version + 1, expected_seq=seq)
            except ConcurrencyConflict:  # DuplicateAppend too: an earlier incarnation started it
                await self.resolve_stale(d, seq, version)
                await self._ack(seq)
                return
            except EventLogUnavailable as e:
                # Nothing ran yet: ask for the dispatch again in a second rather than waiting
                # out the ack wait. If the start was stored after all (its answer lost), the
                # redelivery finds it as a restarted agent would and reports it lost.
                log.warning(
                    "start of %s/%s not recorded, redelivery in %.0fs: %s", d.graph_id, d.task_id, START_RETRY_S, e
                )
                await self.intake.delivery[seq].nak(delay=START_RETRY_S)
                return
            result_version = version + 2
        try:
            report = await self.execute(d, run)
        except asyncio.CancelledError:
            if d.phase == "run":
                await self._report_lost_on_stop(d, guard, result_version)
            raise
        await self._report(d, report, guard, result_version)
        await self._ack(seq)

    async def execute(self, d: ev.TaskDispatched, run: Running) -> RunReport:
        """Run the dispatch; when the agent stops meanwhile (this task cancelled), the run kills its
        process group and waits for the shell before the cancel goes on (`runner.run_command`)."""
        return await self.execution.run(d, run.cancel, run.reason)

    async def _report(self, d: ev.TaskDispatched, report: RunReport, guard: int, version: int) -> None:
        done = completion(d, report, _now(), self.execution.secrets)
        while True:
            try:
                await self.log.append_event(done, version=version, expected_seq=guard)
                break
            except DuplicateAppend:
                log.info("result of %s/%s attempt %d was already recorded", d.graph_id, d.task_id, d.attempt)
                return
            except ConcurrencyConflict as e:
                log.warning(
                    "result of %s/%s attempt %d (%s) rejected, dropped: the task moved on (%s)",
                    d.graph_id,
                    d.task_id,
                    d.attempt,
                    d.phase,
                    e.detail,
                )
                return
            except EventLogUnavailable as e:  # same Msg-Id and guard: retrying cannot double it
                log.warning("result of %s/%s not recorded yet, retrying: %s", d.graph_id, d.task_id, e)
                await asyncio.sleep(1.0)
        log.info(
            "%s/%s attempt %d %s: %s in %.2fs%s",
            d.graph_id,
            d.task_id,
            d.attempt,
            d.phase,
            done.outcome,
            done.duration_s,
            f" ({done.error})" if done.error else "",
        )

    async def _report_lost(self, d: ev.TaskDispatched, reason: str, guard: int, version: int) -> None:
        try:
            await self.log.append_event(lost(d, reason, _now()), version=version, expected_seq=guard)
            log.warning("%s/%s attempt %d reported lost: %s", d.graph_id, d.task_id, d.attempt, reason)
        except ConcurrencyConflict:  # the watchdog or a cancel got there first: nothing to add
            log.info("%s/%s attempt %d: loss already settled", d.graph_id, d.task_id, d.attempt)

    async def _report_lost_on_stop(self, d: ev.TaskDispatched, guard: int, version: int) -> None:
        reason = "the agent stopped while the task ran"
        with contextlib.suppress(EventLogUnavailable, TimeoutError):  # a restart reports it instead
            await asyncio.wait_for(asyncio.shield(self._report_lost(d, reason, guard, version)), STOP_REPORT_TIMEOUT_S)

    async def resolve_stale(self, d: ev.TaskDispatched, dispatch_seq: int, version: int) -> None:
        """A dispatch we cannot start: superseded, or ours and lost when this agent died mid-run."""
        # One direct read of this node's last start of the task (the only task subject an agent
        # may read under `up --auth`); the loss is guarded by that start's sequence, so the
        # server rejects it if anything (a result, the watchdog's TaskLost) followed the start.
        subject = S.subject(S.task_aggregate(d.graph_id, d.task_id), "TaskStarted", d.node_id)
        started: object = None
        start_seq = 0
        try:
            msg = await self.nc.jetstream().get_last_msg(S.STREAM, subject, direct=True)
            start_seq = int(msg.seq or 0)
            started = codec.decode(msg.data or b"", subject=subject, seq=start_seq)
        except nats.js.errors.NotFoundError:
            pass  # never started here: superseded
        if isinstance(started, ev.TaskStarted) and started.attempt == d.attempt and start_seq > dispatch_seq:
            reason = "the agent stopped while the task ran (found when it restarted)"
            await self._report_lost(d, reason, start_seq, version + 2)
        else:
            log.info("skipped superseded dispatch %s", d.event_id)

    async def work(self, stop: asyncio.Event) -> None:
        """Take dispatches while slots are free (`Intake`); run each as its own task."""
        await self.ensure_consumer()
        await self.intake.open()
        beater = asyncio.create_task(self.intake.beat_forever(self.s.ack_wait_s / 3))
        try:
            await self.intake.pull_forever(stop)
        finally:
            beater.cancel()
            await self.intake.close()

    def _launch(self, seq: int) -> None:
        t = asyncio.create_task(self.handle(seq))
        self.active[seq] = t
        t.add_done_callback(functools.partial(self._done, seq))

    def _done(self, seq: int, _finished: object = None) -> None:
        task = self.active.pop(seq, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("task handler failed: %r", task.exception())
        self.intake.finished(seq)


def _stop_on_crash(stop: asyncio.Event) -> Any:
    def check(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("agent loop crashed: %r", t.exception(), exc_info=t.exception())
            stop.set()

    return check


async def run_agent(settings: AgentSettings, stop: asyncio.Event, on_ready: Any = None) -> None:
    """Run an agent until ``stop`` is set; running tasks are killed and reported lost."""
    S.check_id("node id", settings.node_id)
    nc = await nats_connect(settings.url, name=f"agent-{settings.node_id}", max_reconnect_attempts=-1)
    agent = Agent(nc, settings)
    try:
        await agent.log.ensure_stream()
        await agent.logs.ensure_stream()
        await agent.control.start()
        await agent.careful.start()
        await agent.register()
        observer = asyncio.create_task(agent.observe_forever(stop))
        worker = asyncio.create_task(agent.work(stop))
        for t in (observer, worker):
            t.add_done_callback(_stop_on_crash(stop))
        if on_ready is not None:
            on_ready()
        await stop.wait()
        worker.cancel()
        for t in list(agent.active.values()):
            t.cancel()
        await asyncio.gather(observer, worker, *agent.active.values(), return_exceptions=True)
    finally:
        await agent.control.close()
        await agent.careful.close()
        await nc.close()

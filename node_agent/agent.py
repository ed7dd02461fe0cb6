"""The node agent process: register, observe, pull this node's dispatches, run them, report.

Every report is guarded by the task's expected-last-subject-sequence: TaskStarted must follow
the very dispatch the agent holds, and TaskCompleted must follow its own TaskStarted. If the
task moved on meanwhile (re-dispatched, cancelled, or another attempt won), the server
rejects the report, so a stale attempt never runs and a late result is never accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from node_agent.runner import RunResult, run_command
from orchestrator import __version__
from orchestrator.errors import ConcurrencyConflict
from orchestrator.eventlog import EventLog
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from schemas.errors import MalformedEvent

log = logging.getLogger("niyantra.agent")
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@dataclass(frozen=True)
class AgentSettings:
    """One agent's configuration, built at the edge from flags and environment."""

    node_id: str
    url: str = "nats://127.0.0.1:4222"
    slots: int = 2
    labels: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path(".niyantra/work")
    observe_interval_s: float = 5.0
    ack_wait_s: float = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def task_env(d: ev.TaskDispatched) -> dict[str, str]:
    """The environment a task sees: a small allowlist plus its own identity."""
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env.update(NIYANTRA_GRAPH_ID=d.graph_id, NIYANTRA_TASK_ID=d.task_id, NIYANTRA_ATTEMPT=str(d.attempt))
    return env


def completion(d: ev.TaskDispatched, r: RunResult, at: datetime) -> ev.TaskCompleted:
    """The TaskCompleted event for a finished run."""
    ok = r.exit_code == 0 and not r.timed_out
    error = r.error or ("" if ok else f"exit code {r.exit_code}")
    return ev.TaskCompleted(
        event_id=f"complete:{d.graph_id}:{d.task_id}:{d.attempt}",
        occurred_at=at,
        causation_id=f"start:{d.graph_id}:{d.task_id}:{d.attempt}",
        correlation_id=d.graph_id,
        graph_id=d.graph_id,
        task_id=d.task_id,
        node_id=d.node_id,
        attempt=d.attempt,
        outcome="success" if ok else "failure",
        exit_code=r.exit_code,
        duration_s=round(r.duration_s, 3),
        expected_duration_s=d.expected_duration_s,
        error=error,
        output_tail=r.output[-2000:].decode(errors="replace"),
    )


class Agent:
    """A running agent bound to one node id and one NATS connection."""

    def __init__(self, nc: Any, settings: AgentSettings) -> None:
        self.nc = nc
        self.s = settings
        self.log = EventLog(nc)
        self.active: dict[str, asyncio.Task[None]] = {}
        self.slot_free = asyncio.Event()

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
            )
        )

    async def observe_forever(self, stop: asyncio.Event) -> None:
        """Append a NodeObserved reading every ``observe_interval_s`` seconds."""
        psutil.cpu_percent(None)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.s.observe_interval_s)
            if stop.is_set():
                return
            await self.log.append_event(
                ev.NodeObserved(
                    event_id=f"observe:{self.s.node_id}:{uuid.uuid4().hex}",
                    occurred_at=_now(),
                    node_id=self.s.node_id,
                    cpu_percent=psutil.cpu_percent(None),
                    memory_percent=psutil.virtual_memory().percent,
                    load1=os.getloadavg()[0],
                    running_tasks=len(self.active),
                )
            )

    async def subscribe(self) -> Any:
        """The node's durable pull consumer of dispatches."""
        config = ConsumerConfig(
            durable_name=S.agent_consumer(self.s.node_id),
            filter_subject=S.dispatch_filter(self.s.node_id),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.s.ack_wait_s,
            max_ack_pending=max(64, self.s.slots * 4),
        )
        return await self.nc.jetstream().pull_subscribe(
            S.dispatch_filter(self.s.node_id),
            durable=config.durable_name,
            stream=S.STREAM,
            config=config,
        )

    async def handle(self, msg: Any) -> None:
        """Start, run and report one dispatch; ack it once its outcome is recorded."""
        seq = msg.metadata.sequence.stream
        try:
            d = codec.decode(msg.data, subject=msg.subject, seq=seq)
        except MalformedEvent as e:
            log.warning("skipped %s", e)
            await msg.term()
            return
        if not isinstance(d, ev.TaskDispatched) or d.node_id != self.s.node_id:
            log.warning("skipped seq %d: not a dispatch for %s", seq, self.s.node_id)
            await msg.term()
            return
        version = int((msg.headers or {}).get(S.HDR_ORIGINATOR_VERSION, "0"))
        started = ev.TaskStarted(
            event_id=f"start:{d.graph_id}:{d.task_id}:{d.attempt}",
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
            started_seq = await self.log.append_event(started, version=version + 1, expected_seq=seq)
        except ConcurrencyConflict:
            await self.resolve_stale(d, seq, version)
            await msg.ack()
            return
        result = await self.run_with_heartbeat(d, msg)
        done = completion(d, result, _now())
        try:
            await self.log.append_event(done, version=version + 2, expected_seq=started_seq)
        except ConcurrencyConflict as e:
            log.warning(
                "result of %s/%s attempt %d rejected: %s",
                d.graph_id,
                d.task_id,
                d.attempt,
                e.detail,
            )
        log.info(
            "%s/%s attempt %d: %s in %.2fs",
            d.graph_id,
            d.task_id,
            d.attempt,
            done.outcome,
            done.duration_s,
        )
        await msg.ack()

    async def run_with_heartbeat(self, d: ev.TaskDispatched, msg: Any) -> RunResult:
        """Run the command, telling JetStream the dispatch is in progress while it runs."""
        workdir = self.s.workdir / self.s.node_id / d.graph_id / d.task_id
        workdir.mkdir(parents=True, exist_ok=True)
        run = asyncio.create_task(run_command(d.command, cwd=workdir, env=task_env(d), timeout_s=d.timeout_s))
        while not run.done():
            await asyncio.wait([run], timeout=self.s.ack_wait_s / 3)
            if not run.done():
                await msg.in_progress()
        return run.result()

    async def resolve_stale(self, d: ev.TaskDispatched, dispatch_seq: int, version: int) -> None:
        """A dispatch we cannot start: superseded, or ours and lost when this agent died mid-run."""
        later = await self.log.read(S.aggregate_filter(S.task_aggregate(d.graph_id, d.task_id)), after_seq=dispatch_seq)
        mine = [m for m in later if m.subject.endswith(".TaskStarted")]
        if len(later) == 1 and mine:
            lost = ev.TaskCompleted(
                event_id=f"lost:{d.graph_id}:{d.task_id}:{d.attempt}",
                occurred_at=_now(),
                correlation_id=d.graph_id,
                graph_id=d.graph_id,
                task_id=d.task_id,
                node_id=d.node_id,
                attempt=d.attempt,
                outcome="failure",
                error="lost: the agent stopped while the task ran",
                expected_duration_s=d.expected_duration_s,
            )
            with contextlib.suppress(ConcurrencyConflict):  # someone else resolved it first
                await self.log.append_event(lost, version=version + 2, expected_seq=mine[0].seq)
            log.warning("%s/%s attempt %d reported lost", d.graph_id, d.task_id, d.attempt)
        else:
            log.info("skipped superseded dispatch %s", d.event_id)

    async def work(self, stop: asyncio.Event) -> None:
        """Pull dispatches while slots are free; run each as its own task."""
        psub = await self.subscribe()
        while not stop.is_set():
            free = self.s.slots - len(self.active)
            if free <= 0:
                self.slot_free.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.slot_free.wait(), 1.0)
                continue
            try:
                msgs = await psub.fetch(free, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except nats.errors.Error as e:  # transient (reconnecting, consumer busy): retry
                log.warning("fetch failed, retrying: %r", e)
                await asyncio.sleep(0.5)
                continue
            for m in msgs:
                key = f"{m.metadata.sequence.stream}"
                t = asyncio.create_task(self.handle(m))
                self.active[key] = t
                t.add_done_callback(lambda _t, k=key: self._done(k))

    def _done(self, key: str) -> None:
        task = self.active.pop(key, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("task handler failed: %r", task.exception())
        self.slot_free.set()


def _stop_on_crash(stop: asyncio.Event) -> Any:
    def check(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("agent loop crashed: %r", t.exception(), exc_info=t.exception())
            stop.set()

    return check


async def run_agent(settings: AgentSettings, stop: asyncio.Event, on_ready: Any = None) -> None:
    """Run an agent until ``stop`` is set; running tasks are killed and later reported lost."""
    S.check_id("node id", settings.node_id)
    nc = await nats.connect(settings.url, name=f"agent-{settings.node_id}", max_reconnect_attempts=-1)
    agent = Agent(nc, settings)
    try:
        await agent.log.ensure_stream()
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
        await nc.close()

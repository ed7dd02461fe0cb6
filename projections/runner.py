"""The projector process shell: follow EVENTS, fold through a pure evolve, publish the view to KV.

The loop does only fetch → decode → evolve → write → repeat. On start it replays the stream
into memory from sequence 1 (an ordered consumer replays ~100k msgs/s) but writes only the
keys changed after the checkpoint held in KV, so a restart resumes at checkpoint + 1 and a
lost (memory) bucket is rebuilt whole. Keys changed by a batch of events are written
together with the checkpoint, at most once per batch, as JetStream atomic batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType

from orchestrator.errors import OrchestratorError
from orchestrator.eventlog import Append, EventLog
from projections.errors import ViewStoreUnavailable
from projections.node_scores import NodeScoresView, evolve_node_scores, node_values
from projections.readiness import ReadinessView, evolve_readiness, readiness_values
from schemas import codec
from schemas import subjects as S
from schemas.errors import MalformedEvent
from schemas.events import AnyEvent

log = logging.getLogger("niyantra.projector")


class View(Protocol):
    """What the runner needs of a view: its sequence and the keys an evolve touched."""

    seq: int
    touched: set[str]
    ignored: list[str]


V = TypeVar("V", bound=View)


@dataclass(frozen=True)
class Projection(Generic[V]):
    """A named view: how to start it, fold an event into it, and render touched keys."""

    name: str
    bucket: str
    new_view: Callable[[], V]
    evolve: Callable[[V, AnyEvent, int], V]
    values: Callable[[V, set[str]], dict[str, msgspec.Struct]]


PROJECTIONS: dict[str, Projection[Any]] = {
    "readiness": Projection("readiness", S.KV_READINESS, ReadinessView, evolve_readiness, readiness_values),
    "node-scores": Projection("node-scores", S.KV_NODE_SCORES, NodeScoresView, evolve_node_scores, node_values),
}


class Checkpoint(msgspec.Struct, kw_only=True):
    """The last stream sequence a view reflects, and what it had to skip."""

    seq: int = 0
    malformed: int = 0
    recent_problems: list[str] = []


def project(evolve: Callable[[V, AnyEvent, int], V], view: V, events: Iterable[tuple[int, AnyEvent]]) -> V:
    """Fold ``(seq, event)`` pairs into ``view`` with ``evolve``."""
    for seq, event in events:
        view = evolve(view, event, seq)
    return view


_enc = msgspec.json.Encoder()


async def ensure_bucket(nc: Any, bucket: str, *, replicas: int = 1) -> None:
    """Create a view bucket (memory storage, history 1, atomic batches allowed) if missing."""
    js = nc.jetstream()
    try:
        await js.key_value(bucket)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
        try:
            await js.create_key_value(
                KeyValueConfig(bucket=bucket, history=1, storage=StorageType.MEMORY, replicas=replicas)
            )
        except nats.js.errors.BadRequestError:
            pass  # created concurrently by another process: the bucket exists, which is all we need
    info = await js.stream_info(f"KV_{bucket}")
    if not info.config.allow_atomic:
        info.config.allow_atomic = True
        await js.update_stream(info.config)


async def read_checkpoint(nc: Any, bucket: str) -> Checkpoint:
    """The checkpoint stored in a view bucket (seq 0 when absent)."""
    kv = await nc.jetstream().key_value(bucket)
    try:
        entry = await kv.get(S.CHECKPOINT_KEY)
    except nats.js.errors.KeyNotFoundError:
        return Checkpoint()
    return msgspec.json.decode(entry.value or b"{}", type=Checkpoint)


class ProjectorRunner(Generic[V]):
    """Runs one projection against one server until ``stop`` is set."""

    def __init__(self, nc: Any, projection: Projection[V], *, batch: int = 1000, idle: float = 0.005) -> None:
        self.nc = nc
        self.p = projection
        self.batch = batch
        self.idle = idle
        self.view: V = projection.new_view()
        self.checkpoint = Checkpoint()
        self.kv_log = EventLog(nc, stream=f"KV_{projection.bucket}")

    async def _flush(self) -> None:
        if self.view.ignored:
            for problem in self.view.ignored:
                log.warning("%s: %s", self.p.name, problem)
            self.checkpoint.recent_problems = (self.checkpoint.recent_problems + self.view.ignored)[-20:]
            self.view.ignored.clear()
        values = self.p.values(self.view, self.view.touched)
        self.view.touched = set()
        self.checkpoint.seq = self.view.seq
        items = [Append(f"$KV.{self.p.bucket}.{k}", _enc.encode(v)) for k, v in sorted(values.items())]
        items.append(Append(f"$KV.{self.p.bucket}.{S.CHECKPOINT_KEY}", _enc.encode(self.checkpoint)))
        try:
            for i in range(0, len(items), S.MAX_ATOMIC_BATCH):
                await self.kv_log.append_atomic(items[i : i + S.MAX_ATOMIC_BATCH])
        except OrchestratorError as e:
            raise ViewStoreUnavailable(f"cannot write view {self.p.bucket}: {e}") from e

    def _apply(self, data: bytes, subject: str, seq: int) -> None:
        try:
            event = codec.decode(data, subject=subject, seq=seq)
        except MalformedEvent as e:
            log.warning("%s: skipped %s", self.p.name, e)
            self.checkpoint.malformed += 1
            self.view.ignored.append(str(e))
            self.view.seq = seq
            return
        self.view = self.p.evolve(self.view, event, seq)

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], Awaitable[None] | None] | None = None) -> None:
        """Follow the stream until ``stop`` is set; call ``on_ready`` once caught up."""
        await ensure_bucket(self.nc, self.p.bucket)
        stored = await read_checkpoint(self.nc, self.p.bucket)
        self.checkpoint = stored
        head = await EventLog(self.nc).last_seq()
        js = self.nc.jetstream()
        sub = await js.subscribe(
            f"{S.ROOT}.>",
            ordered_consumer=True,
            pending_msgs_limit=100_000,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        ready = False
        try:
            while not stop.is_set():
                pending = 0
                try:
                    msg = await sub.next_msg(timeout=0.25 if not pending else self.idle)
                    while True:
                        seq = msg.metadata.sequence.stream
                        self._apply(msg.data, msg.subject, seq)
                        pending += 1
                        if pending >= self.batch:
                            break
                        msg = await sub.next_msg(timeout=self.idle)
                except nats.errors.TimeoutError:
                    pass
                if self.view.seq <= stored.seq:
                    self.view.touched = set()  # already in KV from before the restart
                    self.view.ignored.clear()
                elif self.view.touched or pending:
                    await self._flush()
                if not ready and self.view.seq >= head:
                    await self._flush()  # confirms the checkpoint; creates it on an empty stream
                    ready = True
                    if on_ready is not None:
                        r = on_ready()
                        if r is not None:
                            await r
        finally:
            await sub.unsubscribe()


async def run_projector(name: str, url: str, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
    """Connect, make sure the stream exists, and run the named projection."""
    import nats

    nc = await nats.connect(url, name=f"projector-{name}", max_reconnect_attempts=-1)
    try:
        await EventLog(nc).ensure_stream()
        await ProjectorRunner(nc, PROJECTIONS[name]).run(stop, on_ready)
    finally:
        await nc.close()

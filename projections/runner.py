"""The projector process shell: follow EVENTS, fold through a pure evolve, publish the view to KV.

The loop does only fetch → decode → evolve → write → repeat (`projections.fold.Fold` does the
middle). Messages are queued by the delivery callback and folded in chunks (whatever arrived,
at most ``high_water``; delivery waits while the fold is behind), and each chunk's changed keys
are written once. On start it replays the stream into memory from sequence 1 (read in bulk by
`projections.logread`, then followed live from the head by an ordered consumer) but writes only
the keys changed after the checkpoint held in KV, so
a restart (also after kill -9) resumes exactly at checkpoint + 1: nothing is missed (the fold
saw every event) and nothing is applied twice (each event is folded once into a fresh view).
A lost (memory) bucket, or parameters that differ from those the stored view was built with,
make it write every key. Keys changed by a batch of events are written together with the
checkpoint, once per batch, as JetStream atomic batches. A live batch that changed no key
(events the view ignores, such as ``TaskStarted`` for node-scores) writes nothing at once: its
checkpoint goes with the next batch that changes something, or alone once no message came for
`CHECKPOINT_LAG_S` or the stored one is `CHECKPOINT_MAX_AGE_S` old, so a reader waiting for a
sequence sees it soon and a restart resumes as before (nothing changed after the stored checkpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from orchestrator.errors import OrchestratorError
from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.runtime.ordered import delivery, subscribe_ordered
from orchestrator.writeside.eventlog import Append, EventLog
from projections.buckets import ensure_bucket, read_checkpoint
from projections.confidence.fold import (
    CONFIDENCE_PARAMS,
    ConfidenceView,
    confidence_keys,
    confidence_values,
    evolve_confidence,
)
from projections.errors import ProjectionError, ViewStoreUnavailable
from projections.fold import Fold, Projection, View
from projections.logread import read_chunks
from projections.node_scores.fold import NodeScoresView, evolve_node_scores, node_keys, node_values
from projections.readiness.fold import ReadinessView, evolve_readiness, readiness_keys, readiness_values
from schemas import subjects as S
from schemas.events import AnyEvent

__all__ = ["PROJECTIONS", "ProjectorRunner", "project"]

log = logging.getLogger("niyantra.projector")

V = TypeVar("V", bound=View)

CHECKPOINT_LAG_S = 0.02  # a checkpoint with nothing else to write waits at most this long for more
CHECKPOINT_MAX_AGE_S = 0.25  # ... and never lets the stored one grow older than this while events arrive

PROJECTIONS: dict[str, Projection[Any]] = {
    "readiness": Projection(
        "readiness", S.KV_READINESS, lambda p: ReadinessView(), evolve_readiness, readiness_values, readiness_keys
    ),
    "node-scores": Projection(
        "node-scores",
        S.KV_NODE_SCORES,
        lambda p: NodeScoresView(half_life_s=p["half_life_s"]),
        evolve_node_scores,
        node_values,
        node_keys,
        {"half_life_s": 1800.0},
    ),
    "confidence": Projection(
        "confidence",
        S.KV_CONFIDENCE,
        lambda p: ConfidenceView(params=dict(p)),
        evolve_confidence,
        confidence_values,
        confidence_keys,
        CONFIDENCE_PARAMS,
    ),
}


def project(evolve: Callable[[V, AnyEvent, int], V], view: V, events: Iterable[tuple[int, AnyEvent]]) -> V:
    """Fold ``(seq, event)`` pairs into ``view`` with ``evolve``."""
    for seq, event in events:
        view = evolve(view, event, seq)
    return view


_enc = msgspec.json.Encoder()


async def write_changes(kv_log: EventLog, bucket: str, changes: Mapping[str, msgspec.Struct]) -> None:
    """Write changed keys (checkpoint last) as atomic batches of at most MAX_ATOMIC_BATCH."""
    items = [Append(f"$KV.{bucket}.{k}", _enc.encode(v)) for k, v in changes.items()]
    try:
        for i in range(0, len(items), S.MAX_ATOMIC_BATCH):
            await kv_log.append_atomic(items[i : i + S.MAX_ATOMIC_BATCH])
    except OrchestratorError as e:
        raise ViewStoreUnavailable(f"cannot write view {bucket}: {e}") from e


class ProjectorRunner:
    """Runs one projection against one server until ``stop`` is set."""

    def __init__(
        self,
        nc: Any,
        projection: Projection[Any],
        *,
        params: Mapping[str, float] | None = None,
        high_water: int = 20_000,
    ) -> None:
        self.nc = nc
        self.p = projection
        self.high_water = high_water
        self._inbox: list[Any] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self.fold: Fold[Any] = Fold(projection, params)
        self.kv_log = EventLog(nc, stream=f"KV_{projection.bucket}")
        self.written_seq = 0  # the sequence of the checkpoint last written
        self._written_at = time.monotonic()

    async def _flush(self) -> None:
        await write_changes(self.kv_log, self.p.bucket, self.fold.changes())
        self.written_seq, self._written_at = self.fold.seq, time.monotonic()

    def _checkpoint_due(self, idle: bool) -> bool:
        """A checkpoint alone is worth a write: its sequence moved and no message came for
        `CHECKPOINT_LAG_S` (``idle``), or the stored one is `CHECKPOINT_MAX_AGE_S` old."""
        if self.fold.seq <= self.written_seq:
            return False
        return idle or time.monotonic() - self._written_at >= CHECKPOINT_MAX_AGE_S

    async def _start(self) -> int:
        """The sequence already stored (0 when the stored view must be rewritten whole)."""
        await ensure_bucket(self.nc, self.p.bucket)
        stored = await read_checkpoint(self.nc, self.p.bucket)
        if stored.seq and stored.params != self.fold.checkpoint.params:
            log.warning("%s: stored view was built with %s; rewriting it whole", self.p.name, stored.params)
            return 0
        self.fold.checkpoint.malformed = 0
        self.fold.checkpoint.recent_problems = list(stored.recent_problems)
        return stored.seq

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], Awaitable[None] | None] | None = None) -> None:
        """Follow the stream until ``stop`` is set; call ``on_ready`` once caught up."""
        stored_seq = await self._start()
        head = await EventLog(self.nc).last_seq()
        await self._catch_up(stored_seq, head, stop)
        if stop.is_set():
            return
        # Unbounded: a full pending queue would drop messages (slow consumer). The callback holds
        # delivery at high_water, which holds the flow-control reply, so the server stops
        # sending: memory stays bounded without losing anything.
        sub = await subscribe_ordered(
            self.nc, f"{S.ROOT}.>", stream=S.STREAM, start_seq=self.fold.seq + 1, cb=self._on_msg, unbounded=True
        )
        ready = False
        try:
            while not stop.is_set():
                wait = CHECKPOINT_LAG_S if self.fold.seq > self.written_seq else 0.25
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
                msgs, self._inbox = self._inbox, []
                self._room.set()
                for msg in msgs:
                    seq = delivery(msg.reply)[0]
                    if seq != self.fold.seq + 1 and seq > self.fold.seq:
                        raise ProjectionError(f"{self.p.name}: gap in the stream: seq {seq} after {self.fold.seq}")
                    self.fold.apply(msg.data, msg.subject, seq)
                if self.fold.seq <= stored_seq:
                    self.fold.discard_changes()  # already in KV from before the restart
                    self.written_seq = self.fold.seq
                elif self.fold.pending() or self._checkpoint_due(idle=not msgs):
                    await self._flush()
                if not ready and self.fold.seq >= head:
                    if self.fold.seq > self.written_seq or not self.written_seq:
                        await self._flush()  # confirms the checkpoint; creates it on an empty stream
                    ready = True
                    if on_ready is not None:
                        r = on_ready()
                        if r is not None:
                            await r
        finally:
            self._room.set()
            await sub.unsubscribe()

    async def _catch_up(self, stored_seq: int, head: int, stop: asyncio.Event) -> None:
        """Fold the log up to ``head`` read in bulk (`projections.logread`, several times the
        ordered consumer's rate) before following it live; what changed after the stored
        checkpoint is written once per ``high_water`` events, as the live loop would."""
        pending = 0
        freeze = gc.isenabled()  # as in `projections.rebuild.build.advance`: the view's entries live on
        try:
            async for chunk in read_chunks(self.nc, 1, head):
                for seq, subject, data in chunk:
                    if seq != self.fold.seq + 1:
                        raise ProjectionError(f"{self.p.name}: gap in the stream: seq {seq} after {self.fold.seq}")
                    self.fold.apply(data, subject, seq)
                if freeze:
                    gc.freeze()
                pending += len(chunk)
                if self.fold.seq <= stored_seq:
                    self.fold.discard_changes()  # already in KV from before the restart
                    self.written_seq = self.fold.seq
                    pending = 0
                elif pending >= self.high_water:
                    await self._flush()
                    pending = 0
                if stop.is_set():
                    return
        finally:
            if freeze:
                gc.unfreeze()
        if pending:
            await self._flush()

    async def _on_msg(self, msg: Any) -> None:
        """Delivery callback: queue the message; hold delivery while the fold is behind."""
        self._inbox.append(msg)
        self._wake.set()
        if len(self._inbox) >= self.high_water:
            self._room.clear()
            await self._room.wait()


async def run_projector(
    name: str,
    url: str,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    params: Mapping[str, float] | None = None,
) -> None:
    """Connect, make sure the stream exists, and run the named projection."""

    nc = await nats_connect(url, name=f"projector-{name}", max_reconnect_attempts=-1)
    try:
        await EventLog(nc).ensure_stream()
        await ProjectorRunner(nc, PROJECTIONS[name], params=params).run(stop, on_ready)
    finally:
        await nc.close()

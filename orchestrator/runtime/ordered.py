"""Ordered push consumers that notice a lost server within seconds and resume where they stood.

Every process follows the event stream, or a view bucket, through nats-py's ordered consumer: an
ephemeral, in-memory, one-replica consumer that lives on one server. When that server dies the
consumer dies with it, silently; the client only notices by missing idle heartbeats, two
intervals without a message or a heartbeat, and then recreates the consumer. nats-py asks for a
heartbeat every 5 s, so after losing the EVENTS stream's leader a three-server cluster stood still
a median 17.6 s before the readiness projector followed again (``scripts/bench_failover``).
Every ordered consumer here asks for a heartbeat each ``HEARTBEAT_S``: a lost consumer is
recreated 2-4 s later, and a failed attempt (the stream still electing a leader) is retried every
2 s. An idle consumer costs one small message a second.

nats-py also resumes a recreated consumer after the last stream sequence it delivered, which is
0 before the first message: a consumer started at the stream's end, reset before anything new
arrived, would deliver the whole stream again (every cancel an agent ever saw, every event a
projector already folded). ``subscribe_ordered`` starts each consumer at an explicit sequence and
tells nats-py that is where it stands.

``watch_bucket`` is a view bucket's watch on the same footing (nats-py's ``KeyValue.watch`` takes
no heartbeat): every key's last value, a ``None`` once those are delivered, then each change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

HEARTBEAT_S = 1.0


async def subscribe_ordered(
    nc: Any,
    subject: str,
    *,
    stream: str,
    start_seq: int | None = None,
    cb: Callable[[Any], Awaitable[None]] | None = None,
    headers_only: bool = False,
    unbounded: bool = False,
) -> JetStreamContext.PushSubscription:
    """An ordered push subscription to ``stream``'s ``subject`` from ``start_seq`` (None: what is
    stored from now on). ``unbounded`` lifts nats-py's pending limits (a callback that holds
    delivery back then bounds memory through flow control instead of dropping messages)."""
    js = nc.jetstream()
    if start_seq is None:
        start_seq = (await js.stream_info(stream)).state.last_seq + 1
    limits = {"pending_msgs_limit": 0, "pending_bytes_limit": 0} if unbounded else {}
    sub: JetStreamContext.PushSubscription = await js.subscribe(
        subject,
        stream=stream,
        cb=cb,
        ordered_consumer=True,
        idle_heartbeat=HEARTBEAT_S,
        headers_only=headers_only or None,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq),
        **limits,
    )
    jsi: Any = sub._sub._jsi  # nats-py's ordered-consumer state: where a reset resumes (module docstring)
    jsi._sseq = max(jsi._sseq, start_seq - 1)
    return sub


@dataclass(frozen=True, slots=True)
class BucketEntry:
    """One stored value of a view bucket, as a watch delivers it."""

    key: str
    value: bytes  # empty: the key was deleted or purged
    created_ns: int  # when the server stored it (ns since the epoch; 0: unknown)
    delta: int  # values still pending in the consumer after this one

    @property
    def created(self) -> datetime | None:
        """When the server stored it."""
        return stored_at(self.created_ns) if self.created_ns else None


def delivery(reply: str) -> tuple[int, int, int]:
    """(stream sequence; stored at, ns since the epoch; messages still pending) of a message a
    JetStream consumer delivered, read off its reply subject (``$JS.ACK.<stream>.<consumer>.
    <delivered>.<stream seq>.<consumer seq>.<ns>.<pending>``, or the form with domain and account
    hash before the stream): nats-py's ``Msg.metadata`` builds two dataclasses and a datetime for
    each message (~5 us; this ~0.5 us), a tenth of the decider's CPU when every view write passed
    through it, and paid again by every projector for every event."""
    t = reply.split(".")
    if len(t) == 9:
        return int(t[5]), int(t[7]), int(t[8])
    return int(t[7]), int(t[9]), int(t[10])


def stored_at(ns: int) -> datetime:
    """The datetime (UTC) of a `delivery`'s stored time, as nats-py's ``Msg.metadata`` gives it."""
    return datetime.fromtimestamp(ns / 1_000_000_000.0, UTC)


class BucketWatch:
    """Every key's last value, then ``None``, then each change, as an async iterator, or handed
    to ``sink`` as each arrives (in order, from the subscription's own task; no queue between)."""

    def __init__(
        self, nc: Any, bucket: str, keys: tuple[str, ...] = (), sink: Callable[[BucketEntry | None], None] | None = None
    ) -> None:
        self.nc = nc
        self.bucket = bucket
        self.keys = keys  # only these keys (KV wildcards allowed: ``task.g.>``); () every key
        self._prefix = f"$KV.{bucket}."
        self._queue: asyncio.Queue[BucketEntry | None] = asyncio.Queue()
        self._put = sink or self._queue.put_nowait
        self._marked = False  # the None after the initial values was queued
        self._sub: Any = None

    async def start(self) -> None:
        """Subscribe; the initial values (and the marker) begin to arrive."""
        js = self.nc.jetstream()
        subjects = [f"{self._prefix}{k}" for k in self.keys] or [f"{self._prefix}>"]
        config = ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        if len(subjects) > 1:
            config.filter_subjects = subjects
        self._sub = await js.subscribe(
            subjects[0],
            stream=f"KV_{self.bucket}",
            cb=self._on_msg,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            config=config,
        )
        info = await self._sub.consumer_info()
        if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
            self._mark()  # nothing stored and nothing sent: the bucket is empty

    async def _on_msg(self, msg: Any) -> None:
        _, at, pending = delivery(msg.reply)
        self._put(BucketEntry(msg.subject[len(self._prefix) :], msg.data, at, pending))
        if pending == 0:
            self._mark()

    def _mark(self) -> None:
        if not self._marked:
            self._marked = True
            self._put(None)

    async def next(self, timeout: float | None = None) -> BucketEntry | None:
        """The next entry (or the marker); TimeoutError after ``timeout`` seconds without one."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def __aiter__(self) -> BucketWatch:
        return self

    async def __anext__(self) -> BucketEntry | None:
        return await self._queue.get()

    async def stop(self) -> None:
        """Unsubscribe (a closed connection took the subscription along already)."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None


async def watch_bucket(
    nc: Any, bucket: str, keys: tuple[str, ...] = (), sink: Callable[[BucketEntry | None], None] | None = None
) -> BucketWatch:
    """A started watch of the view bucket ``bucket`` (of only ``keys``, when given; handing each
    entry to ``sink``, when given, instead of queueing it for the iterator)."""
    watch = BucketWatch(nc, bucket, keys, sink)
    await watch.start()
    return watch

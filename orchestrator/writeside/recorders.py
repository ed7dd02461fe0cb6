"""eventsourcing recorders on JetStream (aggregate, application, tracking, process) and the
application's subscription; `orchestrator.writeside.eventstore` builds them (its `Factory`).

A stored event is one message on ``{root}.{originator_id}.{topic_token}`` (or on the subject a
`SubjectStoredEvent` names): payload the state, headers the originator id, version and topic.
Its notification id is its stream sequence. An insert is one JetStream atomic batch; the first
message of each aggregate carries ``Nats-Expected-Last-Subject-Sequence`` for the filter
``{root}.{originator_id}.>``, so a writer that missed the aggregate's last event is refused
(IntegrityError). Tracking records are messages on ``{tracking_root}.{application_name}`` in the
same stream, so a process recorder commits its events and tracking in one batch.

Ids that are dotted prefixes of others (``a``, ``a.b``) share a guard filter: a write to one
refuses a concurrent write to the other. That is safe, but the refused writer must retry.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self, TypeVar
from uuid import UUID

import nats.errors
import nats.js.errors
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from orchestrator.errors import BatchTooLarge, ConcurrencyConflict, EventLogUnavailable
from orchestrator.writeside.bridge import SyncNats
from orchestrator.writeside.eventlog import EventLog, StoredMessage
from orchestrator.writeside.storedevents import (
    Head,
    PositionedStoredEvent,
    check_stem,
    head_of,
    plan_events,
    plan_tracking,
    to_notification,
    translated,
    version_of,
)
from schemas import subjects as S

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Sequence

    from nats.js.api import RawStreamMsg
    from nats.js.client import JetStreamContext

T = TypeVar("T")

TRACKING_ROOT = S.TRACKING_ROOT
SNAPSHOT_ROOT = S.SNAPSHOT_ROOT
SNAPSHOT_STREAM_SUFFIX = S.SNAPSHOT_STREAM_SUFFIX
_PAGE = 1000
_ALL = 1 << 62
_HEAD_CACHE_SIZE = 100_000
# A batch repeating a stored Nats-Msg-Id (our "{root}.{id}:{version}"): a version already stored.
_ERR_DUPLICATE_IN_BATCH = 10201


# --- imperative shell ------------------------------------------------------------------------


class JetStreamRecorder:
    """Shared plumbing: the connection, one stream and its roots, the head cache, inserts."""

    def __init__(
        self,
        conn: SyncNats,
        *,
        stream: str = S.STREAM,
        root: str = S.ROOT,
        tracking_root: str | None = None,
        owns_connection: bool = False,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.root = check_stem("subject root", root)
        self.tracking_root = check_stem("tracking root", tracking_root or f"{TRACKING_ROOT}.{root}")
        self.log = EventLog(conn.nc, stream=stream, subjects=self.stream_subjects())
        self._owns_connection = owns_connection
        self._heads: OrderedDict[str, Head] = OrderedDict()  # used by the loop thread only
        self._subscriptions: weakref.WeakSet[JetStreamSubscription] = weakref.WeakSet()

    @classmethod
    def open(cls, url: str, *, create_stream: bool = True, **kwargs: Any) -> Self:
        """A recorder with its own connection to ``url``, closed by `close`."""
        recorder = cls(SyncNats.connect(url), owns_connection=True, **kwargs)
        if create_stream:
            recorder.create_stream()
        return recorder

    def stream_subjects(self) -> tuple[str, ...]:
        """Subjects this recorder writes, which the stream must capture."""
        return (f"{self.root}.>",)

    def create_stream(self) -> None:
        """Create the stream, or add our subjects to it (idempotent)."""
        self._call(self._ensure_stream())

    def close(self) -> None:
        """Stop subscriptions; close the connection if this recorder owns it."""
        for subscription in list(self._subscriptions):
            subscription.stop()
        if self._owns_connection:
            with translated(self.stream):
                self.conn.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        with translated(self.stream):
            return self.conn.run(coro)

    @property
    def _js(self) -> JetStreamContext:
        return self.log.js

    async def _ensure_stream(self) -> None:
        await self.log.ensure_stream()
        info = await self._js.stream_info(self.stream)
        have = list(info.config.subjects or [])
        missing = [s for s in self.stream_subjects() if s not in have]
        if missing:
            await self._js.update_stream(replace(info.config, subjects=have + missing))

    async def _insert(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Guarded atomic insert of events (and tracking); return the events' sequences."""
        size = len(events) + (1 if tracking else 0)
        if size > S.MAX_ATOMIC_BATCH:
            raise BatchTooLarge(size, S.MAX_ATOMIC_BATCH)
        heads = await self._load_heads({str(s.originator_id) for s in events})
        appends = plan_events(self.root, events, heads)
        if tracking is not None:
            subject = self._tracking_subject(tracking.application_name)
            appends.append(plan_tracking(subject, tracking, await self._last_tracking(subject)))
        try:
            seqs = await self.log.append_atomic(appends)
        except (ConcurrencyConflict, EventLogUnavailable) as e:
            for agg in heads:  # moved on, or unknown after a failed commit: re-read next time
                self._heads.pop(agg, None)
            if f"'err_code': {_ERR_DUPLICATE_IN_BATCH}" in str(e):  # EventLog reports it untyped
                raise IntegrityError(f"an event of this insert is already stored: {e}") from e
            raise
        for s, seq in zip(events, seqs, strict=False):
            self._remember(str(s.originator_id), Head(s.originator_version, seq))
        return seqs[: len(events)]

    def _remember(self, agg: str, head: Head) -> None:
        """Cache a head unless a newer one is known; evict the least recently used."""
        known = self._heads.get(agg)
        if known is None or head.seq >= known.seq:
            self._heads[agg] = head
        self._heads.move_to_end(agg)
        if len(self._heads) > _HEAD_CACHE_SIZE:
            self._heads.popitem(last=False)

    async def _load_heads(self, aggs: Iterable[str]) -> dict[str, Head]:
        cached = {agg: self._heads.get(check_stem("originator id", agg)) for agg in aggs}
        missing = [agg for agg, head in cached.items() if head is None]
        fetched = await asyncio.gather(*(self._messages(agg, last_only=True) for agg in missing))
        heads = {agg: head for agg, head in cached.items() if head is not None}
        return heads | {agg: head for agg, (_, head) in zip(missing, fetched, strict=True)}

    async def _messages(self, agg: str, *, last_only: bool) -> tuple[list[StoredMessage], Head]:
        """The aggregate's messages (only its last, if asked and that is its own) and its head."""
        filter_subject = f"{self.root}.{agg}.>"
        last = await self._last_message(filter_subject) if last_only else None
        msgs = [last] if last is not None else []
        # Read everything unless the last message alone was asked for and is our own (not that
        # of a longer id sharing our filter).
        if not last_only or (last is not None and last.headers.get(S.HDR_ORIGINATOR_ID) != agg):
            msgs = await self.log.read(filter_subject, limit=_ALL)
        head = head_of(agg, msgs)
        self._remember(agg, head)
        return [m for m in msgs if m.headers.get(S.HDR_ORIGINATOR_ID) == agg], head

    async def _last_message(self, filter_subject: str) -> StoredMessage | None:
        try:
            raw: RawStreamMsg = await self._js.get_last_msg(self.stream, filter_subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        return StoredMessage(raw.seq or 0, raw.subject or "", dict(raw.headers or {}), raw.data or b"")

    def _tracking_subject(self, application_name: str) -> str:
        return f"{self.tracking_root}.{check_stem('application name', application_name)}"

    async def _last_tracking(self, subject: str) -> tuple[int, int | None]:
        """Sequence and notification id of the last tracking message on ``subject``."""
        last = await self._last_message(subject)
        return (0, None) if last is None else (last.seq, int(last.data))


class JetStreamAggregateRecorder(JetStreamRecorder, AggregateRecorder):
    """Aggregate sequences on JetStream."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Write the events atomically, refusing stale or duplicate versions."""
        self._insert_events(stored_events, **kwargs)
        return None

    def _insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> list[int]:
        return self._call(self._insert(stored_events, None)) if stored_events else []

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """Events of one aggregate by version; the latest alone costs one direct get."""
        agg = check_stem("originator id", str(originator_id))
        latest = desc and limit == 1 and lte is None
        msgs, _ = self._call(self._messages(agg, last_only=latest))
        events = [
            PositionedStoredEvent(originator_id, version_of(m), m.headers[S.HDR_TOPIC], m.data, m.seq)
            for m in msgs
            if (gt is None or version_of(m) > gt) and (lte is None or version_of(m) <= lte)
        ]
        if desc:
            events.reverse()
        return events[:limit] if limit is not None else events


class JetStreamApplicationRecorder(JetStreamAggregateRecorder, ApplicationRecorder):
    """Aggregate sequences plus the application sequence: event messages' stream sequences."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Write the events atomically; return their notification ids."""
        return self._insert_events(stored_events, **kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Event notifications from ``start`` up to ``stop``, optionally of some topics only."""
        after = 0 if start is None else max(0, start - 1 if inclusive_of_start else start)
        msgs = self._call(self._notifications(after, limit, stop, frozenset(topics)))
        return [to_notification(m) for m in msgs]

    async def _notifications(
        self, after: int, limit: int, stop: int | None, topics: frozenset[str]
    ) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        page_size = _PAGE if topics else limit
        while len(out) < limit:
            page = await self.log.read(f"{self.root}.>", after_seq=after, limit=page_size, stop_seq=stop)
            out += [m for m in page if not topics or m.headers.get(S.HDR_TOPIC) in topics]
            if len(page) < page_size:
                break
            after = page[-1].seq
        return out[:limit]

    def max_notification_id(self) -> int | None:
        """Stream sequence of the last event message, or None."""
        return self._call(self.log.last_seq(f"{self.root}.>")) or None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        """Follow the application sequence after ``gt``, blocking for new events."""
        subscription = JetStreamSubscription(self, gt=gt, topics=topics)
        self._subscriptions.add(subscription)
        return subscription


class JetStreamSubscription(ListenNotifySubscription[JetStreamApplicationRecorder]):
    """Pulls pages of notifications; an ordered consumer wakes it when events are stored."""

    def __init__(
        self,
        recorder: JetStreamApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._unwatch_lock = threading.Lock()
        # Watch before the first pull starts (in super().__init__): an event stored in between
        # either wakes us or is already visible to that pull.
        with translated(recorder.stream):
            self._unwatch: Callable[[], None] | None = recorder.conn.watch(
                recorder.stream, f"{recorder.root}.>", self._wake
            )
        super().__init__(recorder=recorder, gt=gt, topics=topics)

    def _wake(self) -> None:
        notified = getattr(self, "_has_been_notified", None)  # None until super().__init__ ran
        if notified is not None:
            notified.set()

    def stop(self) -> None:
        """Stop pulling and drop the consumer (idempotent)."""
        super().stop()
        with self._unwatch_lock:
            unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            with translated(self._recorder.stream):
                unwatch()


class JetStreamTrackingRecorder(JetStreamRecorder, TrackingRecorder):
    """Tracking records: one message per record on ``{tracking_root}.{application_name}``."""

    def stream_subjects(self) -> tuple[str, ...]:
        """Tracking subjects only."""
        return (f"{self.tracking_root}.>",)

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record ``tracking``, refusing an id not above the application's current max."""
        self._call(self._insert([], tracking))

    def max_tracking_id(self, application_name: str) -> int | None:
        """The last recorded notification id of ``application_name``, or None."""
        return self._call(self._last_tracking(self._tracking_subject(application_name)))[1]


class JetStreamProcessRecorder(JetStreamTrackingRecorder, JetStreamApplicationRecorder, ProcessRecorder):
    """Application sequence plus tracking, committed together in one atomic batch."""

    def stream_subjects(self) -> tuple[str, ...]:
        """Event and tracking subjects."""
        return (f"{self.root}.>", f"{self.tracking_root}.>")

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        tracking: Tracking | None = kwargs.get("tracking")
        if not stored_events and tracking is None:
            return []
        return self._call(self._insert(stored_events, tracking))

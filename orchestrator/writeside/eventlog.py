"""The event log: guarded and atomic appends to the JetStream EVENTS stream, and reads back.

Optimistic concurrency is per aggregate: an append may carry the stream sequence of the last
event the writer saw for that aggregate; the server compares it with the last sequence on the
aggregate's wildcard subject (``Nats-Expected-Last-Subject-Sequence`` with ``-Subject``) and
rejects a stale write. Multi-message commits use JetStream atomic batches (server 2.12+).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.js.api import StorageType, StreamConfig

from orchestrator.errors import (
    BatchTooLarge,
    ConcurrencyConflict,
    DuplicateAppend,
    EventLogUnavailable,
)
from orchestrator.runtime.connection import replicas as default_replicas
from schemas import codec
from schemas import subjects as S

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from schemas.eventbase import Event
    from schemas.events import AnyEvent


@dataclass(frozen=True)
class Append:
    """One message to append: subject, payload, headers and its optional aggregate guard."""

    subject: str
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)
    expected_seq: int | None = None
    guard_filter: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A message read back from the stream with its sequence and headers."""

    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


def event_append(
    event: Event,
    *,
    version: int | None = None,
    expected_seq: int | None = None,
    msg_id: str | None = None,
) -> Append:
    """Build the `Append` for one of our events: subject from its type, headers, guard."""
    aggregate, subj = S.route(event)
    headers = {S.HDR_ORIGINATOR_ID: aggregate, S.HDR_TOPIC: type(event).__name__}
    if version is not None:
        headers[S.HDR_ORIGINATOR_VERSION] = str(version)
    headers[S.HDR_MSG_ID] = msg_id or event.event_id
    guard = S.aggregate_filter(aggregate) if expected_seq is not None else None
    return Append(subj, codec.encode(event), headers, expected_seq, guard)


def _guard_headers(a: Append) -> dict[str, str]:
    headers = dict(a.headers)
    if a.expected_seq is not None:
        headers[S.HDR_EXPECTED_LAST_SUBJECT_SEQ] = str(a.expected_seq)
        if a.guard_filter:
            headers[S.HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = a.guard_filter
    return headers


class EventLog:
    """Async adapter over the EVENTS stream; translates JetStream errors into ours."""

    def __init__(self, nc: Client, *, stream: str = S.STREAM, subjects: tuple[str, ...] = S.STREAM_SUBJECTS) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.stream = stream
        self.subjects = subjects
        self._batch_counter = 0

    async def ensure_stream(self, *, replicas: int | None = None) -> None:
        """Create the stream if missing (idempotent); direct gets and atomic batches on.

        ``replicas`` defaults to ``NIYANTRA_REPLICAS`` (see `orchestrator.runtime.connection`).
        """
        replicas = replicas or default_replicas()
        config = StreamConfig(
            name=self.stream,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            num_replicas=replicas,
            allow_direct=True,
            allow_atomic=True,
            deny_delete=True,
            deny_purge=True,  # the log is append-only: nobody, admin included, purges it
            duplicate_window=120.0,
        )
        try:
            await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as e:
                # Another process created it between our look and our create.
                if getattr(e, "err_code", None) != 10058:
                    raise EventLogUnavailable(f"cannot create stream {self.stream}: {e}") from e
        except (nats.errors.Error, OSError) as e:
            raise EventLogUnavailable(f"cannot reach JetStream: {e}") from e

    async def append(self, a: Append, *, timeout: float = 10.0) -> int:
        """Append one message; return its stream sequence."""
        try:
            ack = await self.js.publish(
                a.subject, a.payload, stream=self.stream, headers=_guard_headers(a), timeout=timeout
            )
        except nats.js.errors.BadRequestError as e:
            if getattr(e, "err_code", None) == S.ERR_WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(a.subject, a.expected_seq, str(e.description)) from e
            raise EventLogUnavailable(f"append to {a.subject} failed: {e}") from e
        except (nats.errors.Error, OSError) as e:
            raise EventLogUnavailable(f"append to {a.subject} failed: {e}") from e
        if ack.duplicate:
            raise DuplicateAppend(a.subject, int(ack.seq))
        return int(ack.seq)

    async def append_event(
        self,
        event: Event,
        *,
        version: int | None = None,
        expected_seq: int | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Append one of our events with its subject and headers; return its sequence."""
        a = event_append(event, version=version, expected_seq=expected_seq, msg_id=msg_id)
        return await self.append(a)

    async def append_atomic(self, items: list[Append], *, timeout: float = 10.0) -> list[int]:
        """Append all messages or none (one JetStream atomic batch); return their sequences."""
        if not items:
            return []
        if len(items) == 1:
            return [await self.append(items[0], timeout=timeout)]
        if len(items) > S.MAX_ATOMIC_BATCH:
            raise BatchTooLarge(len(items), S.MAX_ATOMIC_BATCH)
        self._batch_counter += 1
        batch_id = f"{self.nc.client_id}-{id(self)}-{self._batch_counter}"
        try:
            for i, a in enumerate(items[:-1], 1):
                headers = _guard_headers(a)
                headers[S.HDR_BATCH_ID] = batch_id
                headers[S.HDR_BATCH_SEQ] = str(i)
                await self.nc.publish(a.subject, a.payload, headers=headers)
            last = items[-1]
            headers = _guard_headers(last)
            headers.update({S.HDR_BATCH_ID: batch_id, S.HDR_BATCH_SEQ: str(len(items)), S.HDR_BATCH_COMMIT: "1"})
            reply = await self.nc.request(last.subject, last.payload, headers=headers, timeout=timeout)
        except (nats.errors.Error, OSError) as e:
            raise EventLogUnavailable(f"atomic append failed: {e}") from e
        resp = json.loads(reply.data)
        err = resp.get("error")
        if err:
            if err.get("err_code") == S.ERR_WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(items[0].subject, items[0].expected_seq, err.get("description", ""))
            raise EventLogUnavailable(f"atomic append rejected: {err}")
        last_seq = int(resp["seq"])
        return list(range(last_seq - len(items) + 1, last_seq + 1))

    async def last_seq(self, filter_subject: str | None = None) -> int:
        """Sequence of the last message on ``filter_subject`` (or in the stream); 0 if none."""
        try:
            if filter_subject is None:
                info = await self.js.stream_info(self.stream)
                return int(info.state.last_seq)
            msg = await self.js.get_last_msg(self.stream, filter_subject, direct=True)
            return int(msg.seq or 0)
        except nats.js.errors.NotFoundError:
            return 0
        except (nats.errors.Error, OSError) as e:
            raise EventLogUnavailable(f"cannot read last sequence: {e}") from e

    async def read(
        self, filter_subject: str, *, after_seq: int = 0, limit: int = 10_000, stop_seq: int | None = None
    ) -> list[StoredMessage]:
        """Messages on ``filter_subject`` after ``after_seq`` in order (batched direct gets)."""
        out: list[StoredMessage] = []
        start = after_seq + 1
        while len(out) < limit:
            page = await self._direct_batch(filter_subject, start, min(1000, limit - len(out)))
            if stop_seq is not None:
                page = [m for m in page if m.seq <= stop_seq]
            out.extend(page)
            if not page or len(page) < 1 or (stop_seq is not None and page[-1].seq >= stop_seq):
                break
            start = page[-1].seq + 1
            if len(page) < 1000:
                break
        return out[:limit]

    async def _direct_batch(self, filter_subject: str, start: int, batch: int) -> list[StoredMessage]:
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        out: list[StoredMessage] = []
        try:
            req = {"seq": start, "next_by_subj": filter_subject, "batch": batch}
            await self.nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", json.dumps(req).encode(), reply=inbox)
            while True:
                msg = await sub.next_msg(timeout=10)
                headers = dict(msg.headers or {})
                status = headers.get("Status")
                if status:  # 204 end of batch, 404 nothing found, 408 timeout
                    if status in ("204", "404"):
                        break
                    raise EventLogUnavailable(f"direct get on {filter_subject}: status {status}")
                out.append(
                    StoredMessage(
                        seq=int(headers["Nats-Sequence"]),
                        subject=headers["Nats-Subject"],
                        headers=headers,
                        data=msg.data,
                    )
                )
        except nats.errors.TimeoutError as e:
            raise EventLogUnavailable(f"direct get on {filter_subject} timed out") from e
        finally:
            await sub.unsubscribe()
        return out

    async def read_events(self, filter_subject: str, *, after_seq: int = 0) -> list[tuple[int, AnyEvent]]:
        """Decoded events on ``filter_subject`` after ``after_seq``."""
        msgs = await self.read(filter_subject, after_seq=after_seq, limit=1_000_000)
        return [(m.seq, codec.decode(m.data, subject=m.subject, seq=m.seq)) for m in msgs]

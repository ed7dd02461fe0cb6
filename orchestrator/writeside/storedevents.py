"""Stored events on JetStream: subjects, guards and conversions the eventsourcing recorders use.

Pure functions: they build `Append` plans and `Notification`s from data and raise eventsourcing's
errors; the recorders in `orchestrator.writeside.recorders` do the I/O.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

import nats.errors
from eventsourcing.persistence import DataError, IntegrityError, Notification, OperationalError, StoredEvent, Tracking

from orchestrator.errors import BatchTooLarge, ConcurrencyConflict, EventLogUnavailable
from orchestrator.writeside.eventlog import Append, StoredMessage
from schemas import subjects as S
from schemas.ids import is_token

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True)
class SubjectStoredEvent(StoredEvent):
    """A stored event that names its own subject, which must lie under ``{root}.{originator_id}.``."""

    subject: str


@dataclass(frozen=True, eq=False)
class PositionedStoredEvent(StoredEvent):
    """A stored event read back with its stream sequence (its place in the one log). It equals
    the `StoredEvent` of the same four fields (the position is where it was found, not what it is)."""

    position: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredEvent):
            return NotImplemented
        mine = (self.originator_id, self.originator_version, self.topic, self.state)
        return mine == (other.originator_id, other.originator_version, other.topic, other.state)

    def __hash__(self) -> int:
        return hash((self.originator_id, self.originator_version, self.topic, self.state))


@dataclass(frozen=True)
class Head:
    """What a writer must know of an aggregate: its last version, the last seq on its filter."""

    version: int | None
    seq: int


# --- pure core -------------------------------------------------------------------------------


def check_stem(what: str, value: str) -> str:
    """Return ``value`` if it is dot-separated subject-safe tokens, else raise `DataError`."""
    if not all(is_token(token) for token in value.split(".")):
        raise DataError(
            f"{what} {value!r} cannot be used in a NATS subject: use dot-separated tokens of "
            "A-Z a-z 0-9 _ - = (schemas.ids.token maps a user's id to one)"
        )
    return value


def topic_token(topic: str) -> str:
    """The topic as one subject token: itself when safe, else with unsafe characters as ``_``."""
    if S.is_safe_id(topic):
        return topic
    token = _UNSAFE.sub("_", topic)
    return ("_" + token if not token or token[0] == "-" else token)[:128]


def event_subject(root: str, s: StoredEvent) -> str:
    """Subject of a stored event: its own `subject` if it has one, else root, id and topic."""
    stem = f"{root}.{check_stem('originator id', str(s.originator_id))}"
    explicit = getattr(s, "subject", None)
    if explicit is None:
        return f"{stem}.{topic_token(s.topic)}"
    if not str(explicit).startswith(stem + "."):
        raise DataError(f"subject {explicit!r} of {s.originator_id!r} is not under {stem}.")
    return check_stem("subject", str(explicit))


def plan_events(root: str, stored_events: Sequence[StoredEvent], heads: Mapping[str, Head]) -> list[Append]:
    """Messages of one insert; each aggregate's first is guarded by the head the writer saw."""
    out: list[Append] = []
    last: dict[str, int | None] = {}
    for s in stored_events:
        agg, version = str(s.originator_id), s.originator_version
        headers = {
            S.HDR_ORIGINATOR_ID: agg,
            S.HDR_ORIGINATOR_VERSION: str(version),
            S.HDR_TOPIC: s.topic,
            # Deterministic, so JetStream refuses a replay of one version within its window.
            S.HDR_MSG_ID: f"{root}.{agg}:{version}",
        }
        first = agg not in last
        prev = heads[agg].version if first else last[agg]
        if prev is not None and version <= prev:
            raise IntegrityError(f"{agg!r} is at version {prev} here; cannot insert {version}")
        last[agg] = version
        guard = (heads[agg].seq, f"{root}.{agg}.>") if first else (None, None)
        out.append(Append(event_subject(root, s), s.state, headers, *guard))
    return out


def plan_tracking(subject: str, tracking: Tracking, last: tuple[int, int | None]) -> Append:
    """The guarded tracking message, or `IntegrityError` if its id is not above the last."""
    seq, max_id = last
    nid = tracking.notification_id
    if max_id is not None and nid <= max_id:
        raise IntegrityError(f"tracking id {nid} of {tracking.application_name!r} is not above the recorded {max_id}")
    return Append(subject, str(nid).encode(), {S.HDR_MSG_ID: f"{subject}:{nid}"}, seq, None)


def version_of(m: StoredMessage) -> int:
    """A message's originator version; writers outside eventsourcing may omit it (then 0)."""
    return int(m.headers.get(S.HDR_ORIGINATOR_VERSION, "0"))


def head_of(agg: str, msgs: Sequence[StoredMessage]) -> Head:
    """The head after ``msgs``, all on ``agg``'s filter in order: its last version, their last seq."""
    own = [m for m in msgs if m.headers.get(S.HDR_ORIGINATOR_ID) == agg]
    return Head(version_of(own[-1]) if own else None, msgs[-1].seq if msgs else 0)


def restore_id(text: str) -> UUID | str:
    """An originator id as stored: a canonical UUID string comes back as a `UUID`."""
    try:
        uuid = UUID(text)
    except ValueError:
        return text
    return uuid if str(uuid) == text else text


def to_notification(m: StoredMessage) -> Notification:
    """The `Notification` a message holds; its id is the stream sequence."""
    oid = restore_id(m.headers[S.HDR_ORIGINATOR_ID])
    return Notification(oid, version_of(m), m.headers[S.HDR_TOPIC], m.data, id=m.seq)


@contextmanager
def translated(stream: str) -> Iterator[None]:
    """Turn our and nats-py's errors into eventsourcing's (PEP 249 names) at the boundary."""
    try:
        yield
    except ConcurrencyConflict as e:
        raise IntegrityError(str(e)) from e
    except BatchTooLarge as e:
        raise DataError(str(e)) from e
    except (EventLogUnavailable, nats.errors.Error, OSError) as e:
        raise OperationalError(f"JetStream stream {stream}: {e}") from e

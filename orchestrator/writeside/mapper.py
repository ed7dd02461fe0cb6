"""The msgspec mapper: our `schemas.events` in and out of eventsourcing's stored events.

eventsourcing sees one of our events as a `Recorded`: the event plus the aggregate it belongs to
and its version there. The stored state is exactly `schemas.codec.encode(event)` (so projections
that read the stream decode it with `schemas.codec.decode`), the topic is the event type's name
and the subject is `schemas.subjects.route(event)`, e.g. ``ev.task.demo.T-005.TaskDispatched.node-3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError

from orchestrator.writeside.storedevents import SubjectStoredEvent
from schemas import codec
from schemas import subjects as S
from schemas.eventbase import Event
from schemas.events import AnyEvent

if TYPE_CHECKING:
    from datetime import datetime

    from eventsourcing.domain import DomainEventProtocol
    from eventsourcing.persistence import StoredEvent


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """One of our events as a domain event: the event, its aggregate id and its version there."""

    originator_id: str
    originator_version: int
    event: AnyEvent
    position: int = 0  # its stream sequence when read back from the log (0: not read from it)

    @property
    def timestamp(self) -> datetime:
        """When the event occurred."""
        return self.event.occurred_at


def recorded(event: AnyEvent, version: int) -> Recorded:
    """Wrap ``event`` as version ``version`` of the aggregate its subject names."""
    aggregate, _ = S.route(event)
    return Recorded(originator_id=aggregate, originator_version=version, event=event)


class MsgspecMapper(Mapper[str]):
    """Maps `Recorded` events to stored events and back, honouring compressor and cipher."""

    def to_stored_event(self, domain_event: DomainEventProtocol[str]) -> SubjectStoredEvent:
        """Encode the wrapped event; its topic is its type name and its subject its route."""
        event = getattr(domain_event, "event", domain_event)
        version = getattr(domain_event, "originator_version", None)
        if not isinstance(event, Event) or not isinstance(version, int):
            raise TypeError(
                f"{type(domain_event).__name__} is not a schemas.events Event with an originator "
                "id and version; wrap it: recorded(event, version)"
            )
        aggregate, subject = S.route(event)
        if str(getattr(domain_event, "originator_id", None)) != aggregate:
            raise ValueError(f"{type(event).__name__} belongs to {aggregate!r}, not {domain_event.originator_id!r}")
        state = codec.encode(event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return SubjectStoredEvent(
            originator_id=aggregate,
            originator_version=version,
            topic=type(event).__name__,
            state=state,
            subject=subject,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Recorded:
        """Decode a stored event back into a `Recorded`."""
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            event = codec.decode(state, subject=str(stored_event.originator_id))
        except Exception as e:  # any cipher/compressor/codec failure, as eventsourcing's Mapper does
            raise MapperDeserialisationError(
                f"cannot decode {stored_event.topic} version {stored_event.originator_version} "
                f"of {stored_event.originator_id!r}: {e}"
            ) from e
        return Recorded(
            originator_id=str(stored_event.originator_id),
            originator_version=stored_event.originator_version,
            event=event,
            position=getattr(stored_event, "position", 0),
        )

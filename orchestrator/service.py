"""Write-side commands that do not belong to a running process: submitting a graph."""

from __future__ import annotations

from datetime import datetime

from orchestrator.errors import ConcurrencyConflict, GraphFileError
from orchestrator.eventlog import EventLog
from orchestrator.graphfile import GraphSpec
from schemas.events import GraphSubmitted
from schemas.subjects import check_id


def graph_submitted(spec: GraphSpec, now: datetime, event_id: str, submitted_by: str = "") -> GraphSubmitted:
    """Pure: the event that accepts a validated graph."""
    check_id("graph id", spec.id)
    return GraphSubmitted(
        event_id=event_id,
        occurred_at=now,
        correlation_id=spec.id,
        graph_id=spec.id,
        title=spec.title,
        tasks=spec.tasks,
        source=spec.source,
        submitted_by=submitted_by,
    )


async def submit_graph(log: EventLog, event: GraphSubmitted) -> int:
    """Append GraphSubmitted as the first event of its graph; a second submit of the id fails."""
    try:
        return await log.append_event(event, version=1, expected_seq=0, msg_id=f"submit:{event.graph_id}")
    except ConcurrencyConflict as e:
        raise GraphFileError(event.source, [f"{event.source}: graph {event.graph_id!r} was already submitted"]) from e

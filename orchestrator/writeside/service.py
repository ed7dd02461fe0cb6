"""Submitting a graph straight to the event log (the async path the harness and API use).

The CLI submits through the `Orchestrator` application; both write the same events
(`orchestrator.graphs.submission.graph_events`) in one atomic batch guarded on the graph's subject.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import ConcurrencyConflict, GraphFileError
from orchestrator.writeside.eventlog import EventLog, event_append
from schemas import subjects as S
from schemas.events import GraphSubmitted, GraphTasksAdded


async def submit_graph(log: EventLog, events: Sequence[GraphSubmitted | GraphTasksAdded]) -> int:
    """Append a graph's events atomically as the first events of its graph; return the head's seq.

    The same content again returns 0 (nothing written); other content under the id is refused.
    """
    head = events[0]
    assert isinstance(head, GraphSubmitted)
    items = [
        event_append(e, version=v, expected_seq=0 if v == 1 else None, msg_id=e.event_id)
        for v, e in enumerate(events, start=1)
    ]
    try:
        return (await log.append_atomic(items))[0]
    except ConcurrencyConflict as e:
        prior = await log.read_events(f"{S.ROOT}.{S.graph_aggregate(head.graph_id)}.GraphSubmitted")
        if prior and isinstance(prior[0][1], GraphSubmitted) and prior[0][1].digest == head.digest:
            return 0
        raise GraphFileError(
            head.source, [f"{head.source}: graph {head.graph_id!r} already exists with different content"]
        ) from e

"""The backlog: graphs waiting on the event stream until the system has nothing else to do.

Choice (issue 7): the backlog lives on the stream, not in a directory or a KV bucket, so it
is replayable and audited like everything else. ``niyantra backlog add FILE --priority N``
validates the file and appends one `BacklogItemAdded` (subject ``ev.backlog.<graph>``,
guarded so a graph id enters the backlog once) carrying the whole graph. An item is pending
while no graph with its id exists. When the decider sees nothing ready, dispatched or running
and autonomy is full, it submits the highest-priority pending item (then the oldest) as a
`GraphSubmitted` with ``submitted_by = "niyantra:backlog:<item>"`` (recorded as generated
work; the metrics count it), guarded by the graph's subjects being empty, so two deciders
submit it once.

Pure parts: `backlog_item`, `pending`, `choose`, `take_event`. Shell: `add_item`,
`read_items`, `take_next` (the decider's hook).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from orchestrator.errors import ConcurrencyConflict, GraphFileError
from orchestrator.graphcheck import GraphSpec
from orchestrator.submission import graph_events
from schemas import events as ev
from schemas import subjects as S

if TYPE_CHECKING:
    from orchestrator.eventlog import EventLog
    from projections.readiness import GraphView

GENERATED_BY = "niyantra:backlog:"
IDLE = frozenset({"ready", "dispatched", "running"})


@dataclass(frozen=True)
class Item:
    """One backlog item and the stream sequence it was added at."""

    seq: int
    event: ev.BacklogItemAdded

    @property
    def graph_id(self) -> str:
        """The id of the graph it submits."""
        return self.event.graph.graph_id


def backlog_item(spec: GraphSpec, priority: int, now: datetime, added_by: str = "") -> ev.BacklogItemAdded:
    """Pure: the event that puts a validated graph in the backlog (one message: it must fit)."""
    events = graph_events(spec, now, event_id=f"backlog:{spec.id}")
    if len(events) > 1:
        raise GraphFileError(
            spec.source, [f"{spec.source}: graph {spec.id!r} is too big for the backlog (one message)"]
        )
    head = events[0]
    assert isinstance(head, ev.GraphSubmitted)
    return ev.BacklogItemAdded(
        event_id=f"backlog:{spec.id}:{head.digest[:16]}",
        occurred_at=now,
        correlation_id=spec.id,
        item_id=spec.id,
        priority=priority,
        graph=head,
        added_by=added_by,
    )


def pending(items: Iterable[Item], graphs: Collection[str]) -> list[Item]:
    """Items whose graph does not exist yet, highest priority first, then the oldest."""
    return sorted((i for i in items if i.graph_id not in graphs), key=lambda i: (-i.event.priority, i.seq))


def idle(graphs: Mapping[str, GraphView]) -> bool:
    """Nothing is ready, dispatched or running (from the graphs' totals)."""
    return not any(g.counts.get(s, 0) for g in graphs.values() for s in IDLE)


def choose(items: Iterable[Item], graphs: Mapping[str, GraphView], autonomy: str) -> Item | None:
    """The item the decider submits now: the first pending one, when idle under full autonomy."""
    if autonomy != "full" or not idle(graphs):
        return None
    first = pending(items, graphs.keys())
    return first[0] if first else None


def take_event(item: Item, now: datetime) -> ev.GraphSubmitted:
    """The `GraphSubmitted` that makes the item's graph live, recorded as generated work."""
    return msgspec.structs.replace(
        item.event.graph,
        event_id=f"backlog-submit:{item.graph_id}",
        occurred_at=now,
        causation_id=item.event.event_id,
        submitted_by=f"{GENERATED_BY}{item.graph_id} (priority {item.event.priority})",
    )


async def add_item(eventlog: EventLog, item: ev.BacklogItemAdded) -> int:
    """Append the item; refused (`ConcurrencyConflict`) when its graph id is in the backlog already."""
    return await eventlog.append_event(item, expected_seq=0)


async def read_items(eventlog: EventLog) -> list[Item]:
    """Every backlog item on the stream."""
    if not await eventlog.last_seq(S.BACKLOG_FILTER):
        return []
    return [
        Item(seq, e) for seq, e in await eventlog.read_events(S.BACKLOG_FILTER) if isinstance(e, ev.BacklogItemAdded)
    ]


async def take_next(
    eventlog: EventLog, graphs: Mapping[str, GraphView], autonomy: str, now: datetime
) -> tuple[ev.GraphSubmitted, int] | None:
    """The decider's hook: submit the chosen item, if any, with its sequence; None when there is
    none (or another decider won)."""
    if autonomy != "full" or not idle(graphs):
        return None
    item = choose(await read_items(eventlog), graphs, autonomy)
    if item is None:
        return None
    event = take_event(item, now)
    try:
        seq = await eventlog.append_event(event, version=1, expected_seq=0)
    except ConcurrencyConflict:
        return None  # another decider (or a person) submitted that graph first
    return event, seq

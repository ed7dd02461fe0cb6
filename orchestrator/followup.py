"""The decider's hook for work the system gives itself: follow-up rules and the backlog.

``plan(...)`` runs inside a decider round on the round's views (before any await): it takes
the graphs from the readiness mirror and calls the pure `orchestrator.generate.generate`.
``append(...)`` then appends each generation decision with its graph guard (a conflict means
another decider generated first: dropped, like a stale dispatch), and, when the round found
nothing ready, dispatched or running under full autonomy, submits the next backlog item
(`orchestrator.backlog.take_next`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.backlog import idle, take_next
from orchestrator.errors import ConcurrencyConflict
from orchestrator.generate import Generation, generate
from projections.readiness import GraphView

if TYPE_CHECKING:
    from orchestrator.decide import DeciderConfig, Views
    from orchestrator.eventlog import EventLog

log = logging.getLogger("niyantra.decider")


@dataclass
class Work:
    """A round's generated-work decisions, computed with its views."""

    generations: list[Generation] = field(default_factory=list)
    graphs: dict[str, GraphView] = field(default_factory=dict)
    autonomy: str = "full"
    now: datetime | None = None


class GraphIndex:
    """The readiness mirror's graphs by id, kept current value by value when the mirror offers an
    ``on_value`` hook (chained after any hook already there); otherwise read from its values."""

    def __init__(self, mirror: Any) -> None:
        self.mirror = mirror
        self.hooked = hasattr(mirror, "on_value")
        self._graphs = _graphs_in(mirror.values)
        if self.hooked:
            self._next = mirror.on_value
            mirror.on_value = self

    @property
    def graphs(self) -> dict[str, GraphView]:
        """Every graph the mirror holds now."""
        return self._graphs if self.hooked else _graphs_in(self.mirror.values)

    def __call__(self, key: str, old: Any, new: Any) -> None:
        if key.startswith("graph."):
            if isinstance(new, GraphView):
                self._graphs[new.graph_id] = new
            elif isinstance(old, GraphView):
                self._graphs.pop(old.graph_id, None)
        if self._next is not None:
            self._next(key, old, new)


def _graphs_in(values: Mapping[str, Any]) -> dict[str, GraphView]:
    return {v.graph_id: v for k, v in values.items() if k.startswith("graph.") and isinstance(v, GraphView)}


def plan(views: Views, graph_index: Mapping[str, GraphView], now: datetime, config: DeciderConfig) -> Work:
    """Pure: this round's generation decisions and what the backlog hook needs."""
    graphs = dict(graph_index)  # a snapshot: the index changes while the round awaits
    gens = generate(views.tasks, graphs, views.seqs, now, config.decider_id, config.version)
    return Work(generations=gens, graphs=graphs, autonomy=views.autonomy, now=now)


async def append(eventlog: EventLog, work: Work, state: Any) -> None:
    """Append the round's generations (guarded), then maybe take a backlog item."""
    for g in work.generations:
        try:
            seq = await eventlog.append_event(g.event, version=g.version, expected_seq=g.expected_seq)
        except ConcurrencyConflict as e:
            state.conflicts += 1
            log.info("dropped stale generation %s: %s", g.event.event_id, e.detail)
            continue
        state.last_append_seq = max(state.last_append_seq, seq)
        log.info("%s for graph %s", type(g.event).__name__, g.event.graph_id)
    if work.generations or work.now is None or not idle(work.graphs):
        return
    taken = await take_next(eventlog, work.graphs, work.autonomy, work.now)
    if taken is not None:
        event, seq = taken
        state.last_append_seq = max(state.last_append_seq, seq)
        log.info("took backlog item %s", event.graph_id)

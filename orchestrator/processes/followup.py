"""The decider's hook for work the system gives itself: follow-up rules and the backlog.

``plan(...)`` runs inside a decider round on the round's views (before any await) and calls the
pure cores: `orchestrator.decision.generate.generate` (follow-up rules) and, when the rules generate
nothing, `orchestrator.decision.backlog.take` (the next backlog graph, when nothing is ready, dispatched
or running and autonomy is full). ``append(...)`` appends each decision with its guard; a
conflict means another decider decided first and is dropped, like a stale dispatch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.decision.backlog import Take, take
from orchestrator.decision.generate import Generation, generate
from orchestrator.errors import ConcurrencyConflict
from projections.readiness.fold import GraphView

if TYPE_CHECKING:
    from orchestrator.decision.decide import DeciderConfig, Views
    from orchestrator.writeside.eventlog import EventLog

log = logging.getLogger("niyantra.decider")


@dataclass
class Work:
    """A round's generated-work decisions, computed with its views."""

    generations: list[Generation] = field(default_factory=list)
    backlog: Take | None = None


class GraphIndex:
    """The readiness mirror's graphs by id, kept current value by value when the mirror offers an
    ``on_value`` hook (chained after any hook already there); otherwise read from its values."""

    def __init__(self, mirror: Any) -> None:
        self.mirror = mirror
        self.quiet = Quiet()  # the graphs judged to want nothing (see `Quiet`)
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


class Quiet:
    """Graphs whose rules wanted nothing, keyed by the graph state they were judged at.

    Whether a rule wants a task depends only on the graph's tasks (states, outcomes, ids,
    dependencies) and its fired triggers: a task's state change moves the graph's ``seq``, a
    generation its ``graph_seq``. While both are unchanged, the answer is still "nothing", so
    the round skips the graph; any change judges it again. A cache of the shell, not of `generate`:
    the decisions are exactly the pure function's.
    """

    def __init__(self) -> None:
        self.judged: dict[str, tuple[int, int]] = {}

    def live(self, graphs: Mapping[str, GraphView]) -> dict[str, GraphView]:
        """The graphs with rules to judge this round."""
        return {
            gid: g
            for gid, g in graphs.items()
            if g.rules and not g.limit_reached and self.judged.get(gid) != (g.seq, g.graph_seq)
        }

    def note(self, judged: Mapping[str, GraphView], decided: list[Generation]) -> None:
        """Remember the judged graphs that wanted nothing."""
        busy = {d.event.graph_id for d in decided}
        for gid, g in judged.items():
            if gid not in busy:
                self.judged[gid] = (g.seq, g.graph_seq)


def plan(
    views: Views, graphs: Mapping[str, GraphView], now: datetime, config: DeciderConfig, quiet: Quiet | None = None
) -> Work:
    """This round's generation decisions, else the backlog graph to take (``quiet``: skip graphs
    already judged to want nothing at their current state)."""
    judge = quiet.live(graphs) if quiet is not None else graphs
    gens = generate(views.tasks, judge, views.seqs, now, config.decider_id, config.version) if judge else []
    if quiet is not None:
        quiet.note(judge, gens)
    if gens:
        return Work(generations=gens)
    return Work(backlog=take(graphs, views.autonomy, views.seqs, now, config.decider_id, config.version))


async def append(eventlog: EventLog, work: Work, state: Any) -> None:
    """Append the round's decisions, each with its guard."""
    guarded: list[Generation | Take] = [*work.generations, *([work.backlog] if work.backlog else [])]
    for d in guarded:
        version = d.version if isinstance(d, Generation) else None
        try:
            seq = await eventlog.append_event(d.event, version=version, expected_seq=d.expected_seq)
        except ConcurrencyConflict as e:
            state.conflicts += 1
            log.info("dropped stale decision %s: %s", d.event.event_id, e.detail)
            continue
        state.last_append_seq = max(state.last_append_seq, seq)
        log.info("%s for graph %s", type(d.event).__name__, d.event.graph_id)

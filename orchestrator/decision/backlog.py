"""The backlog: graphs that wait on the stream until the system has nothing else to do.

Choice (issue 7): the backlog is on the event stream, neither a directory nor a KV bucket, so
it is replayable and audited like everything else, and needs no new store:

- ``niyantra backlog add FILE --priority N`` validates the file like ``submit`` and submits it
  through the write side with ``backlog_priority = N`` on its `GraphSubmitted`. The readiness
  view holds such a graph with every task ``pending`` ("in the backlog"): nothing of it runs,
  but it is a real graph (status shows it, approve and cancel work on it).
- When nothing is ready, dispatched or running and autonomy is full, the decider takes the
  waiting backlog graph of highest priority (then the oldest: lowest stream sequence) by
  appending `BacklogItemTaken` (subject ``ev.backlog.<graph>``, guarded by that subject being
  empty, so two deciders take it once). It records the view sequences and ``now`` it used, so
  ``replay --check`` re-runs the choice; the metrics count its tasks as generated work.

Everything here is pure: `waiting`, `idle`, `choose`, `take`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from projections.readiness.fold import GraphView
from schemas import events as ev
from schemas.ids import token

ACTIVE = ("ready", "dispatched", "running")


class Take(msgspec.Struct, frozen=True, kw_only=True):
    """A decision to take a backlog graph: the event and its guard (its backlog subject is empty)."""

    event: ev.BacklogItemTaken
    expected_seq: int = 0


def waiting(graphs: Mapping[str, GraphView]) -> list[GraphView]:
    """Backlog graphs not taken yet, highest priority first, then the oldest."""
    out = [g for g in graphs.values() if g.backlog_priority is not None and not g.backlog_taken]
    return sorted(out, key=lambda g: (-(g.backlog_priority or 0), g.graph_seq, g.graph_id))


def idle(graphs: Mapping[str, GraphView]) -> bool:
    """Nothing is ready, dispatched or running (from the graphs' totals)."""
    return not any(g.counts.get(s, 0) for g in graphs.values() for s in ACTIVE)


def choose(graphs: Mapping[str, GraphView], autonomy: str) -> GraphView | None:
    """The backlog graph to take now: the first waiting one, when idle under full autonomy."""
    if autonomy != "full" or not idle(graphs):
        return None
    first = waiting(graphs)
    return first[0] if first else None


def take(
    graphs: Mapping[str, GraphView],
    autonomy: str,
    seqs: Mapping[str, int],
    now: datetime,
    decider_id: str = "decider",
    version: str = "",
) -> Take | None:
    """The decision to take the chosen backlog graph, or None."""
    g = choose(graphs, autonomy)
    if g is None:
        return None
    others = len(waiting(graphs)) - 1
    reason = (
        f"nothing ready, dispatched or running and autonomy full: took {g.graph_id} (priority "
        f"{g.backlog_priority}, {g.total} tasks) from the backlog" + (f"; {others} more wait" if others else "")
    )
    event = ev.BacklogItemTaken(
        event_id=f"backlog-take:{token(g.graph_id)}",
        occurred_at=now,
        causation_id=f"readiness@{g.graph_seq}",
        correlation_id=g.graph_id,
        graph_id=g.graph_id,
        priority=g.backlog_priority or 0,
        tasks=g.total,
        reason=reason,
        view_seqs=dict(sorted(seqs.items())),
        decider_id=decider_id,
        decider_version=version,
        now=now,
    )
    return Take(event=event)

"""The write side as an eventsourcing Application: graph and task aggregates over our events.

The aggregates are functional (immutable state folded from `Recorded` events, as in the
eventsourcing library's msgspec examples); the persistence is `orchestrator.eventstore` and
the mapper `MsgspecMapper`, so what lands on the stream is exactly the `schemas.events` structs
on their routed subjects, and the projectors read them like any other event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from orchestrator.errors import GraphFileError
from orchestrator.mapper import MsgspecMapper, Recorded, recorded
from schemas import events as ev
from schemas import subjects as S


class GraphState(msgspec.Struct, frozen=True, kw_only=True):
    """A submitted graph as the write side knows it."""

    id: str
    version: int
    task_ids: tuple[str, ...]


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    """One task's write-side state: its current attempt, where it runs, how it ended."""

    id: str
    version: int
    state: str
    attempt: int = 0
    node_id: str | None = None


def project_graph(state: GraphState | None, events: Iterable[Recorded]) -> GraphState | None:
    """Fold a graph's events."""
    for r in events:
        match r.event:
            case ev.GraphSubmitted(tasks=tasks):
                state = GraphState(
                    id=r.originator_id, version=r.originator_version, task_ids=tuple(t.id for t in tasks)
                )
            case _:
                raise TypeError(f"a graph has no {type(r.event).__name__} events")
    return state


def project_task(state: TaskState | None, events: Iterable[Recorded]) -> TaskState | None:
    """Fold a task's events (dispatched → started → completed, per attempt)."""
    for r in events:
        base: dict[str, Any] = {"id": r.originator_id, "version": r.originator_version}
        match r.event:
            case ev.TaskDispatched(attempt=a, node_id=n):
                state = TaskState(state="dispatched", attempt=a, node_id=n, **base)
            case ev.TaskStarted() if state is not None:
                state = msgspec.structs.replace(state, state="running", **base)
            case ev.TaskCompleted(outcome=outcome) if state is not None:
                state = msgspec.structs.replace(state, state="succeeded" if outcome != "failure" else "failed", **base)
            case _:
                raise TypeError(f"cannot apply {type(r.event).__name__} to task state {state!r}")
    return state


class Orchestrator(Application[str]):
    """Commands validated against the graph and task aggregates, persisted in JetStream."""

    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "orchestrator.eventstore",
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
    }

    def submit_graph(self, event: ev.GraphSubmitted) -> int:
        """Record a new graph; a graph id can be submitted once. Returns the stream sequence."""
        aggregate = S.graph_aggregate(event.graph_id)
        try:
            self.repository.get(aggregate, projector_func=project_graph)
        except AggregateNotFoundError:
            pass  # new graph: the only case that may proceed
        else:
            raise GraphFileError(event.source, [f"{event.source}: graph {event.graph_id!r} was already submitted"])
        try:
            (recording,) = self.save(recorded(event, 1))
        except IntegrityError as e:  # another submit won the race
            raise GraphFileError(
                event.source, [f"{event.source}: graph {event.graph_id!r} was already submitted"]
            ) from e
        return int(recording.notification.id)

    def task(self, graph_id: str, task_id: str) -> TaskState:
        """A task's write-side state, folded from its events on the stream."""
        state = self.repository.get(S.task_aggregate(graph_id, task_id), projector_func=project_task)
        assert isinstance(state, TaskState)
        return state

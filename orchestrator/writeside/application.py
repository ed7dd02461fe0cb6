"""The write side as an eventsourcing Application: graph and task aggregates over our events.

The aggregates are functional (immutable state folded from `Recorded` events, as in the
eventsourcing library's msgspec examples); the persistence is `orchestrator.writeside.eventstore` and
the mapper `MsgspecMapper`, so what lands on the stream is exactly the `schemas.events` structs
on their routed subjects, and the projectors read them like any other event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import ClassVar

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from orchestrator.errors import GraphFileError, InvariantViolation
from orchestrator.writeside.holdback import Hold, held_back
from orchestrator.writeside.mapper import MsgspecMapper, Recorded, recorded
from orchestrator.writeside.taskrules import (
    FINAL,
    TaskRecord,
    check_approval,
    check_cancel,
    check_dispatch,
    check_holder,
    check_live,
    effective,
    effective_records,
    evolve_task,
)
from schemas import events as ev
from schemas import records as evrec
from schemas import subjects as S


class GraphState(msgspec.Struct, frozen=True, kw_only=True):
    """A submitted graph as the write side knows it: its content hash, tasks, and whether cancelled."""

    id: str
    version: int
    digest: str = ""
    source: str = ""
    tasks: dict[str, evrec.TaskSpec] = {}
    parts: int = 1
    cancelled_by: str | None = None
    cancelled_at: int = 0  # the cancel's log position
    holds: tuple[Hold, ...] = ()  # generated tasks' ``before`` lists, with their log positions
    backlog: bool = False  # a backlog graph: nothing of it runs until the decider takes it

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Task ids in submission order."""
        return tuple(self.tasks)


def project_graph(state: GraphState | None, events: Iterable[Recorded]) -> GraphState | None:
    """Fold a graph's events: the head, its parts, a cancel."""
    replace = msgspec.structs.replace
    for r in events:
        match r.event:
            case ev.GraphSubmitted() as e:
                tasks = {t.id: t for t in e.tasks}
                state = GraphState(
                    id=e.graph_id,
                    version=r.originator_version,
                    digest=e.digest,
                    source=e.source,
                    tasks=tasks,
                    parts=e.parts,
                    backlog=e.backlog_priority is not None,
                )
            case ev.GraphTasksAdded(tasks=more) if state is not None:
                state = replace(state, version=r.originator_version, tasks={**state.tasks, **{t.id: t for t in more}})
            case ev.TasksGenerated(generated=gen) if state is not None:
                fresh = {x.spec.id: x for x in gen if x.spec.id not in state.tasks}
                holds = tuple(Hold(task=t, before=x.before, at=r.position) for t, x in fresh.items() if x.before)
                tasks = {**state.tasks, **{t: x.spec for t, x in fresh.items()}}
                state = replace(state, version=r.originator_version, tasks=tasks, holds=state.holds + holds)
            case ev.GenerationLimitReached() if state is not None:
                state = replace(state, version=r.originator_version)
            case ev.GraphCancelled(by=who) if state is not None:
                state = replace(state, version=r.originator_version, cancelled_by=who, cancelled_at=r.position)
            case _:
                raise TypeError(f"cannot apply {type(r.event).__name__} to graph state {state!r}")
    return state


class Orchestrator(Application[str]):
    """Commands validated against the graph and task aggregates, persisted in JetStream."""

    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "orchestrator.writeside.eventstore",
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
    }

    def submit_graph(self, events: Sequence[ev.GraphSubmitted | ev.GraphTasksAdded]) -> Submitted:
        """Record a new graph in one atomic write; the same content again is a no-op.

        Different content under an existing id is refused with a `GraphFileError`.
        """
        head = events[0]
        assert isinstance(head, ev.GraphSubmitted)
        existing = self.graph_or_none(head.graph_id)
        if existing is not None:
            return self._resubmitted(head, existing)
        try:
            recordings = self.save(*(recorded(e, v) for v, e in enumerate(events, start=1)))
        except IntegrityError:  # another submit won the race: same content is still fine
            existing = self.graph_or_none(head.graph_id)
            if existing is None:
                raise
            return self._resubmitted(head, existing)
        return Submitted(graph_id=head.graph_id, seq=int(recordings[0].notification.id), created=True)

    def _resubmitted(self, head: ev.GraphSubmitted, existing: GraphState) -> Submitted:
        if existing.digest and existing.digest == head.digest:
            return Submitted(graph_id=head.graph_id, seq=0, created=False)
        raise GraphFileError(
            head.source,
            [
                f"{head.source}: graph {head.graph_id!r} already exists with different content "
                f"(submitted from {existing.source or 'elsewhere'}); choose another graph id"
            ],
        )

    def graph_or_none(self, graph_id: str) -> GraphState | None:
        """A graph's write-side state, or None if it was never submitted."""
        try:
            state = self.repository.get(S.graph_aggregate(graph_id), projector_func=project_graph)
        except AggregateNotFoundError:
            return None
        assert isinstance(state, GraphState)
        return state

    def graph(self, graph_id: str) -> GraphState:
        """A graph's write-side state; `InvariantViolation` if there is no such graph."""
        state = self.graph_or_none(graph_id)
        if state is None:
            raise InvariantViolation(f"no graph {graph_id!r} was submitted")
        return state

    def record(self, graph: GraphState, task_id: str) -> tuple[TaskRecord, int]:
        """A task's record folded from its own events, and its aggregate version; its spec's
        dependencies include the generated tasks that hold it back (`holdback`)."""
        r, version = self._own_record(graph, task_id)
        if any(task_id in h.before for h in graph.holds):
            r = self._held(graph)[task_id]
        return effective(r, {}, graph.cancelled_by), version

    def _own_record(self, graph: GraphState, task_id: str) -> tuple[TaskRecord, int]:
        """The task's record folded from its own events alone (the graph's cancel not applied)."""
        spec = graph.tasks.get(task_id)
        if spec is None:
            raise InvariantViolation(f"graph {graph.id!r} has no task {task_id!r}")
        initial = TaskRecord(graph_id=graph.id, spec=spec)

        def fold(_: object, events: Iterable[Recorded]) -> tuple[TaskRecord, int]:
            r, version = initial, 0
            for rec in events:
                r, version = evolve_task(r, rec.event, rec.position), rec.originator_version
            return r, version

        try:
            # the fold returns (record, version), not an eventsourcing aggregate: hence the ignore
            r, version = self.repository.get(  # type: ignore[type-var,misc]
                S.task_aggregate(graph.id, task_id), projector_func=fold
            )
        except AggregateNotFoundError:
            r, version = initial, 0
        return r, version

    def shown(self, graph: GraphState, task_id: str) -> tuple[TaskRecord, int]:
        """`record` as the views show it: also cancelled when a dependency failed or was cancelled.

        Reads the task's unfinished ancestors (only through them can a failure reach it): a
        command's cost, not a dispatch's (a dispatch needs its dependencies succeeded anyway).
        """
        r, version = self.record(graph, task_id)
        if graph.holds:  # a hold can reach any task: read the graph whole
            return effective_records(self._held(graph), graph.cancelled_by)[task_id], version
        records = {task_id: r}
        stack = [task_id]
        while stack:
            cur = records[stack.pop()]
            if cur.state in FINAL:
                continue
            for d in cur.spec.depends_on:
                if d not in records and d in graph.tasks:
                    records[d] = self.record(graph, d)[0]
                    stack.append(d)
        return effective_records(records, graph.cancelled_by)[task_id], version

    def _held(self, graph: GraphState) -> dict[str, TaskRecord]:
        """Every task's own record, with the dependencies the holds added."""
        own = {t: self._own_record(graph, t)[0] for t in graph.tasks}
        return held_back(own, graph.holds, graph.cancelled_at)

    def taken(self, graph_id: str) -> bool:
        """Whether the decider took the backlog graph (its `BacklogItemTaken` is recorded)."""
        try:
            self.repository.get(S.backlog_aggregate(graph_id), projector_func=lambda _, events: list(events) or None)
        except AggregateNotFoundError:
            return False
        return True

    def task(self, graph_id: str, task_id: str) -> TaskRecord:
        """A task's write-side record."""
        return self.record(self.graph(graph_id), task_id)[0]

    def _append(self, event: ev.AnyEvent, version: int) -> int:
        try:
            (recording,) = self.save(recorded(event, version + 1))
        except IntegrityError as e:
            raise InvariantViolation(f"{type(event).__name__}: the task changed meanwhile; try again") from e
        return int(recording.notification.id)

    # --- commands -------------------------------------------------------------------------

    def dispatch(self, event: ev.TaskDispatched) -> int:
        """Dispatch a task attempt; refused unless the task is ready (see `taskrules`)."""
        graph = self.graph(event.graph_id)
        check_live(graph.backlog, graph.backlog and self.taken(graph.id), graph.id)
        r, version = self.record(graph, event.task_id)
        deps = {d: self.record(graph, d)[0] for d in r.spec.depends_on}
        return self._append(check_dispatch(r, deps, event), version)

    def report(self, event: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> int:
        """A start, result or loss from the node and attempt that hold the task (fenced)."""
        r, version = self.record(self.graph(event.graph_id), event.task_id)
        check_holder(r, event)
        return self._append(event, version)

    def cancel_task(self, graph_id: str, task_id: str, by: str, reason: str, now: datetime, event_id: str) -> int:
        """Cancel an unfinished task (a running attempt is killed by its agent)."""
        r, version = self.shown(self.graph(graph_id), task_id)
        check_cancel(r)
        e = ev.TaskCancelled(
            event_id=event_id, occurred_at=now, graph_id=graph_id, task_id=task_id, by=by, reason=reason
        )
        return self._append(e, version)

    def cancel_graph(self, graph_id: str, by: str, reason: str, now: datetime, event_id: str) -> int:
        """Cancel every unfinished task of a graph."""
        graph = self.graph(graph_id)
        if graph.cancelled_by is not None:
            raise InvariantViolation(f"graph {graph_id!r} was already cancelled by {graph.cancelled_by}")
        e = ev.GraphCancelled(event_id=event_id, occurred_at=now, graph_id=graph_id, by=by, reason=reason)
        (recording,) = self.save(recorded(e, graph.version + 1))
        return int(recording.notification.id)

    def approve(self, graph_id: str, task_id: str, by: str, reason: str, now: datetime, event_id: str) -> int:
        """Approve a tier-3 task that awaits approval."""
        r, version = self.shown(self.graph(graph_id), task_id)
        check_approval(r, by)
        e = ev.TaskApproved(
            event_id=event_id, occurred_at=now, graph_id=graph_id, task_id=task_id, by=by, reason=reason
        )
        return self._append(e, version)

    def reject(self, graph_id: str, task_id: str, by: str, reason: str, now: datetime, event_id: str) -> int:
        """Reject a tier-3 task that awaits approval; it ends cancelled."""
        r, version = self.shown(self.graph(graph_id), task_id)
        check_approval(r, by)
        e = ev.TaskRejected(
            event_id=event_id, occurred_at=now, graph_id=graph_id, task_id=task_id, by=by, reason=reason
        )
        return self._append(e, version)


class Submitted(msgspec.Struct, frozen=True, kw_only=True):
    """What a submit did: ``created`` is False when the same graph was already there."""

    graph_id: str
    seq: int
    created: bool

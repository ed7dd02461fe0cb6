"""Small builders of events for table-driven tests of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import events as ev
from schemas import records as rec

T0 = datetime(2026, 1, 1, 3, 47, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def submitted(graph: str, *tasks: tuple[str, tuple[str, ...]], max_attempts: int = 1) -> ev.GraphSubmitted:
    specs = tuple(rec.TaskSpec(id=t, command=f"run {t}", depends_on=d, max_attempts=max_attempts) for t, d in tasks)
    return ev.GraphSubmitted(event_id=f"s:{graph}", occurred_at=T0, graph_id=graph, tasks=specs)


def dispatched(graph: str, task: str, node: str, attempt: int = 1, t: float = 1) -> ev.TaskDispatched:
    return ev.TaskDispatched(
        event_id=f"d:{task}:{attempt}",
        occurred_at=at(t),
        graph_id=graph,
        task_id=task,
        node_id=node,
        attempt=attempt,
        command=f"run {task}",
    )


def started(graph: str, task: str, node: str, attempt: int = 1, t: float = 2) -> ev.TaskStarted:
    return ev.TaskStarted(
        event_id=f"st:{task}:{attempt}",
        occurred_at=at(t),
        graph_id=graph,
        task_id=task,
        node_id=node,
        attempt=attempt,
    )


def completed(
    graph: str, task: str, node: str, outcome: str = "success", attempt: int = 1, t: float = 3
) -> ev.TaskCompleted:
    return ev.TaskCompleted(
        event_id=f"c:{task}:{attempt}",
        occurred_at=at(t),
        graph_id=graph,
        task_id=task,
        node_id=node,
        attempt=attempt,
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=0 if outcome == "success" else 1,
        duration_s=1.0,
    )


def registered(node: str, slots: int = 2, t: float = 0, **labels: str) -> ev.NodeRegistered:
    return ev.NodeRegistered(event_id=f"r:{node}", occurred_at=at(t), node_id=node, slots=slots, labels=labels)


def ran(graph: str, task: str, node: str, outcome: str = "success", attempt: int = 1) -> list[object]:
    """A dispatch and its completion (the write side never accepts a result without a dispatch)."""
    return [dispatched(graph, task, node, attempt), completed(graph, task, node, outcome, attempt)]


def lost(graph: str, task: str, node: str, attempt: int = 1, t: float = 4) -> ev.TaskLost:
    return ev.TaskLost(
        event_id=f"l:{task}:{attempt}",
        occurred_at=at(t),
        graph_id=graph,
        task_id=task,
        node_id=node,
        attempt=attempt,
        reason="node lost",
    )


def spec(task: str, *deps: str, **kw: object) -> rec.TaskSpec:
    return rec.TaskSpec(id=task, command=f"run {task}", depends_on=deps, **kw)  # type: ignore[arg-type]


def graph(graph_id: str, *specs: rec.TaskSpec) -> ev.GraphSubmitted:
    return ev.GraphSubmitted(event_id=f"s:{graph_id}", occurred_at=T0, graph_id=graph_id, tasks=specs)


def observed(node: str, t: float = 5, running: int = 0) -> ev.NodeObserved:
    return ev.NodeObserved(
        event_id=f"o:{node}:{t}",
        occurred_at=at(t),
        node_id=node,
        cpu_percent=10.0,
        memory_percent=20.0,
        load1=0.5,
        running_tasks=running,
    )

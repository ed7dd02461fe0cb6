"""The readiness view: each task's state, what it waits for and who waits for it; graph totals.

``evolve_readiness`` is the pure fold. The view is owned by its fold: evolve replaces the
frozen entries it touches and records their KV keys in ``touched`` so that the runner writes
only what an event changed (a completion rewrites the task and its direct dependents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from schemas import events as ev
from schemas.subjects import graph_key, readiness_key


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """One task as the readiness view sees it; ``seq`` is the stream sequence it reflects."""

    graph_id: str
    task_id: str
    title: str = ""
    type: str = ""
    command: str
    state: ev.TaskState
    depends_on: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    ready_since: datetime | None = None
    node: str | None = None
    attempt: int = 0
    max_attempts: int = 1
    tier: int = 1
    estimate_s: float | None = None
    timeout_s: float | None = None
    priority: int | None = None
    labels: dict[str, str] = {}
    env: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    preflight: str | None = None
    last_seq: int = 0
    version: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    reason: str = ""
    seq: int = 0


class GraphView(msgspec.Struct, frozen=True, kw_only=True):
    """Totals of one graph (the article's 'Total tasks: 14 | Completed: 3 | ...' line)."""

    graph_id: str
    title: str = ""
    total: int = 0
    counts: dict[str, int] = {}
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    seq: int = 0

    @property
    def done(self) -> bool:
        """Every task is in a terminal state."""
        return sum(self.counts.get(s, 0) for s in ev.TERMINAL_STATES) == self.total


@dataclass
class ReadinessView:
    """All tasks and graphs; ``seq`` is the last stream sequence applied."""

    tasks: dict[tuple[str, str], TaskView] = field(default_factory=dict)
    graphs: dict[str, GraphView] = field(default_factory=dict)
    seq: int = 0
    touched: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)


def _count(counts: dict[str, int], old: str | None, new: str) -> dict[str, int]:
    out = dict(counts)
    if old is not None:
        out[old] = out.get(old, 0) - 1
    out[new] = out.get(new, 0) + 1
    return out


def _put_task(view: ReadinessView, new: TaskView, seq: int) -> None:
    key = (new.graph_id, new.task_id)
    old = view.tasks.get(key)
    view.tasks[key] = new
    view.touched.add(readiness_key(new.graph_id, new.task_id))
    if old is None or old.state != new.state:
        g = view.graphs[new.graph_id]
        counts = _count(g.counts, old.state if old else None, new.state)
        view.graphs[new.graph_id] = msgspec.structs.replace(g, counts=counts, seq=seq)
        view.touched.add(graph_key(new.graph_id))


def _submit(view: ReadinessView, e: ev.GraphSubmitted, seq: int) -> None:
    if e.graph_id in view.graphs:
        view.ignored.append(f"seq {seq}: graph {e.graph_id} submitted again; kept the first")
        return
    dependents: dict[str, list[str]] = {t.id: [] for t in e.tasks}
    for t in e.tasks:
        for d in t.depends_on:
            dependents.setdefault(d, []).append(t.id)
    view.graphs[e.graph_id] = GraphView(
        graph_id=e.graph_id, title=e.title, total=len(e.tasks), submitted_at=e.occurred_at, seq=seq
    )
    view.touched.add(graph_key(e.graph_id))
    for t in e.tasks:
        ready = not t.depends_on
        _put_task(
            view,
            TaskView(
                graph_id=e.graph_id,
                task_id=t.id,
                title=t.title,
                type=t.type,
                command=t.command,
                state="ready" if ready else "pending",
                depends_on=t.depends_on,
                waiting_for=t.depends_on,
                dependents=tuple(sorted(dependents[t.id])),
                ready_since=e.occurred_at if ready else None,
                max_attempts=t.max_attempts,
                tier=t.tier,
                estimate_s=t.estimate_s,
                timeout_s=t.timeout_s,
                priority=t.priority,
                labels=t.labels,
                env=t.env,
                scope=t.scope,
                preflight=t.preflight,
                seq=seq,
            ),
            seq,
        )


def _release_dependents(view: ReadinessView, done: TaskView, at: datetime, seq: int) -> None:
    for dep_id in done.dependents:
        dep = view.tasks[(done.graph_id, dep_id)]
        waiting = tuple(w for w in dep.waiting_for if w != done.task_id)
        ready = not waiting and dep.state == "pending"
        _put_task(
            view,
            msgspec.structs.replace(
                dep,
                waiting_for=waiting,
                state="ready" if ready else dep.state,
                ready_since=at if ready else dep.ready_since,
                seq=seq,
            ),
            seq,
        )


def _cancel_downstream(view: ReadinessView, failed: TaskView, seq: int) -> None:
    stack = list(failed.dependents)
    while stack:
        tid = stack.pop()
        dep = view.tasks[(failed.graph_id, tid)]
        if dep.state in ev.TERMINAL_STATES:
            continue
        reason = f"dependency {failed.task_id} failed"
        _put_task(view, msgspec.structs.replace(dep, state="cancelled", reason=reason, seq=seq), seq)
        stack.extend(dep.dependents)


def _complete(view: ReadinessView, t: TaskView, e: ev.TaskCompleted, seq: int) -> None:
    base = dict(
        last_seq=seq,
        version=t.version + 1,
        finished_at=e.occurred_at,
        exit_code=e.exit_code,
        duration_s=e.duration_s,
        seq=seq,
    )
    if e.outcome in ("success", "partial"):
        done = msgspec.structs.replace(t, state="succeeded", reason="", **base)
        _put_task(view, done, seq)
        _release_dependents(view, done, e.occurred_at, seq)
    elif e.attempt < t.max_attempts:
        retry = msgspec.structs.replace(
            t,
            state="ready",
            ready_since=e.occurred_at,
            reason=f"attempt {e.attempt} failed: {e.error}",
            **base,
        )
        _put_task(view, retry, seq)
    else:
        failed = msgspec.structs.replace(t, state="failed", reason=e.error, **base)
        _put_task(view, failed, seq)
        _cancel_downstream(view, failed, seq)


def _task_event(view: ReadinessView, e: ev.TaskEvent, seq: int) -> None:
    t = view.tasks.get((e.graph_id, e.task_id))
    if t is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown task {e.graph_id}/{e.task_id}")
        return
    match e:
        case ev.TaskDispatched():
            _put_task(
                view,
                msgspec.structs.replace(
                    t,
                    state="dispatched",
                    node=e.node_id,
                    attempt=e.attempt,
                    last_seq=seq,
                    version=t.version + 1,
                    reason="",
                    seq=seq,
                ),
                seq,
            )
        case ev.TaskStarted():
            _put_task(
                view,
                msgspec.structs.replace(
                    t,
                    state="running",
                    started_at=e.occurred_at,
                    last_seq=seq,
                    version=t.version + 1,
                    seq=seq,
                ),
                seq,
            )
        case ev.TaskCompleted():
            _complete(view, t, e, seq)


def evolve_readiness(view: ReadinessView, event: ev.AnyEvent, seq: int) -> ReadinessView:
    """Apply one event (at stream sequence ``seq``) to the readiness view."""
    if seq <= view.seq:
        return view  # redelivery of what is already applied
    match event:
        case ev.GraphSubmitted():
            _submit(view, event, seq)
        case ev.TaskDispatched() | ev.TaskStarted() | ev.TaskCompleted():
            _task_event(view, event, seq)
        case ev.NodeRegistered() | ev.NodeObserved():
            pass
        case _:
            raise TypeError(f"readiness: unhandled event type {type(event).__name__}")
    view.seq = seq
    return view


def readiness_values(view: ReadinessView, keys: set[str]) -> dict[str, msgspec.Struct]:
    """The current value of each KV key in ``keys``."""
    out: dict[str, msgspec.Struct] = {}
    for key in keys:
        kind, _, rest = key.partition(".")
        if kind == "graph":
            out[key] = view.graphs[rest]
        else:
            g, _, t = rest.partition(".")
            out[key] = view.tasks[(g, t)]
    return out

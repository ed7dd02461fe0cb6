"""`ReadinessView`, the readiness fold's state, and its one write path.

Every change of a task goes through `put_task` (or `put_graph_tasks` for many tasks of one
graph): it stores the frozen entry, notes its KV key in ``touched``, keeps the index of ready
tasks (its emptying ends a queueing episode: `drained`) and, when the task's state changed, the
graph's counts (and ``finished_at`` once every task of the graph has ended). The rules that
decide the new entries are in `projections.readiness.fold` (task events) and
`projections.readiness.graphevents` (graph events).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from orchestrator.graphs.submission import GraphAssembly
from projections.feedback import QualityGate
from projections.readiness.entries import GraphView, Health, TaskView
from schemas import records as rec
from schemas.subjects import graph_key, readiness_key


@dataclass
class ReadinessView:
    """All tasks and graphs; ``seq`` is the last stream sequence applied."""

    tasks: dict[tuple[str, str], TaskView] = field(default_factory=dict)
    graphs: dict[str, GraphView] = field(default_factory=dict)
    seq: int = 0
    touched: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)
    assembly: GraphAssembly = field(default_factory=GraphAssembly)
    ready: set[tuple[str, str]] = field(default_factory=set)  # keys of the tasks in state ready (an index)
    quality: QualityGate = field(default_factory=QualityGate)  # the quality threshold (fold state)
    # cache entries and each task id's last key, by their KV keys (`projections.readiness.cache`)
    cache: dict[str, msgspec.Struct] = field(default_factory=dict)
    health: Health | None = None  # every graph's failure rate and pause (`projections.readiness.health`)


HEALTH_KEY = "health"  # KV key of the `Health` entry


def drained(view: ReadinessView, seq: int) -> None:
    """No task is ready any more: an open queueing episode (``Health.scale_up``) ends."""
    h = view.health
    if h is not None and h.scale_up is not None:
        view.health = msgspec.structs.replace(h, scale_up=None, scale_up_reason="", seq=seq)
        view.touched.add(HEALTH_KEY)


def _done(counts: dict[str, int], total: int) -> bool:
    """`GraphView.done` of these counts."""
    return sum(counts.get(s, 0) for s in rec.TERMINAL_STATES) == total


def put_task(view: ReadinessView, new: TaskView, seq: int) -> None:
    key = (new.graph_id, new.task_id)
    put_known(view, key, view.tasks.get(key), new, seq)


def put_known(view: ReadinessView, key: tuple[str, str], old: TaskView | None, new: TaskView, seq: int) -> None:
    """`put_task` for a caller that already holds the stored entry ``old`` of ``key`` (None: none)."""
    view.tasks[key] = new
    view.touched.add(readiness_key(key[0], key[1]))
    state = new.state
    if state == "ready":
        view.ready.add(key)
    else:
        view.ready.discard(key)
        if not view.ready:
            drained(view, seq)
    if old is None or old.state != state:
        graph_id = key[0]
        g = view.graphs[graph_id]
        counts = dict(g.counts)  # a new dict: the entry replaced may still be read (frozen values)
        if old is not None:
            counts[old.state] = counts.get(old.state, 0) - 1
        counts[state] = counts.get(state, 0) + 1
        if state in rec.TERMINAL_STATES and g.finished_at is None and _done(counts, g.total):
            g = msgspec.structs.replace(g, counts=counts, seq=seq, finished_at=new.finished_at)
        else:
            g = msgspec.structs.replace(g, counts=counts, seq=seq)
        view.graphs[graph_id] = g
        view.touched.add(graph_key(graph_id))


def put_graph_tasks(view: ReadinessView, graph_id: str, tasks: list[TaskView], seq: int) -> None:
    """`put_task` for each of ``tasks`` (all of graph ``graph_id``) in order, the graph's totals
    replaced once at the end instead of once per task (the same value: the counts move the same
    way, and ``finished_at`` is set by the first task that finishes the graph)."""
    g = view.graphs[graph_id]
    counts: dict[str, int] | None = None
    finished_at = g.finished_at
    touched, ready, stored = view.touched, view.ready, view.tasks
    for new in tasks:
        key = (graph_id, new.task_id)
        old = stored.get(key)
        stored[key] = new
        touched.add(readiness_key(graph_id, new.task_id))
        state = new.state
        if state == "ready":
            ready.add(key)
        else:
            ready.discard(key)
        if old is None or old.state != state:
            if counts is None:
                counts = dict(g.counts)
            if old is not None:
                counts[old.state] = counts.get(old.state, 0) - 1
            counts[state] = counts.get(state, 0) + 1
            if state in rec.TERMINAL_STATES and finished_at is None and _done(counts, g.total):
                finished_at = new.finished_at
    if counts is not None:
        view.graphs[graph_id] = msgspec.structs.replace(g, counts=counts, seq=seq, finished_at=finished_at)
        touched.add(graph_key(graph_id))
    if not ready:
        drained(view, seq)

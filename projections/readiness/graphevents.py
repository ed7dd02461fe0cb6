"""How graph events change the readiness view: a graph submitted (whole, or its last part), a
backlog graph taken, a graph cancelled, tasks a follow-up rule generated, its limit reached.

Pure like the rest of the fold (`projections.readiness.fold`, which dispatches to these); every task
entry changes through `projections.readiness.view.put_task`. Ranks, depths and downstream counts
are static per graph (`graphrank`), computed once when the graph is complete.
"""

from __future__ import annotations

import msgspec

from orchestrator.decision import lifecycle as lc
from orchestrator.decision.actionkey import SourceIndex
from projections.readiness.cache import with_form
from projections.readiness.entries import GraphView, TaskView
from projections.readiness.graphrank import graph_shapes
from projections.readiness.view import ReadinessView
from projections.readiness.view import put_graph_tasks as _put_graph_tasks
from projections.readiness.view import put_task as _put_task
from schemas import events as ev
from schemas import records as rec
from schemas.subjects import graph_key


def _submit(view: ReadinessView, e: ev.GraphSubmitted, seq: int, version: int = 1) -> None:
    if e.graph_id in view.graphs:
        view.ignored.append(f"seq {seq}: graph {e.graph_id} submitted again; kept the first")
        return
    dependents: dict[str, list[str]] = {t.id: [] for t in e.tasks}
    for t in e.tasks:
        for d in t.depends_on:
            dependents.setdefault(d, []).append(t.id)
    shapes = graph_shapes(e.tasks)
    view.graphs[e.graph_id] = GraphView(
        graph_id=e.graph_id,
        title=e.title,
        total=len(e.tasks),
        submitted_at=e.occurred_at,
        seq=seq,
        depth=max((s.depth for s in shapes), default=-1) + 1,
        critical_path_s=max((s.rank_s for s in shapes), default=0.0),
        rules=e.rules,
        generation_limit=e.generation_limit,
        graph_version=version,
        graph_seq=seq,
        backlog_priority=e.backlog_priority,
    )
    view.touched.add(graph_key(e.graph_id))
    held = f"in the backlog (priority {e.backlog_priority})" if e.backlog_priority is not None else ""
    views: list[TaskView] = []
    index: SourceIndex | None = None
    gid, at, replace = e.graph_id, e.occurred_at, msgspec.structs.replace
    for t, shape in zip(e.tasks, shapes, strict=True):
        free = not t.depends_on and not held
        gate = free and t.tier == 3
        ready = free and not gate
        # at most 15 keywords per call: CPython passes more through a dict, which costs as
        # much as building the entry twice; the rest only when one differs from its default
        new = TaskView(
            graph_id=gid,
            task_id=t.id,
            title=t.title,
            type=t.type,
            command=t.command,
            state="ready" if ready else "pending",
            depends_on=t.depends_on,
            waiting_for=t.depends_on,
            dependents=tuple(sorted(dependents[t.id])),
            ready_since=at if ready else None,
            estimate_s=t.estimate_s,
            seq=seq,
            depth=shape.depth,
            rank_s=shape.rank_s,
            downstream=shape.downstream,
        )
        if (
            t.max_attempts != 1
            or t.tier != 1
            or t.timeout_s is not None
            or t.priority is not None
            or t.labels
            or t.env
            or t.scope
            or t.preflight is not None
            or held
        ):
            new = replace(
                new,
                max_attempts=t.max_attempts,
                tier=t.tier,
                timeout_s=t.timeout_s,
                priority=t.priority,
                labels=t.labels,
                env=t.env,
                scope=t.scope,
                preflight=t.preflight,
                awaiting_approval=gate,
                reason=held,
            )
        if t.outputs or e.source_tree:
            new = replace(new, output_decls=t.outputs, source_tree=e.source_tree)
        if e.cache and (e.source_tree or t.inputs or t.outputs):
            index = index or SourceIndex(e.source_files, e.filesets)  # once per graph, for all its tasks
            new = with_form(e, t, new, index)
        views.append(new)
    _put_graph_tasks(view, e.graph_id, views, seq)


def taken(view: ReadinessView, e: ev.BacklogItemTaken, seq: int) -> None:
    """A backlog graph goes live: its tasks without dependencies become ready (tier 3: await approval)."""
    g = view.graphs.get(e.graph_id)
    if g is None or g.backlog_priority is None or g.backlog_taken:
        view.ignored.append(f"seq {seq}: BacklogItemTaken for {e.graph_id}, not a waiting backlog graph")
        return
    view.graphs[e.graph_id] = msgspec.structs.replace(g, backlog_taken=True, seq=seq)
    view.touched.add(graph_key(e.graph_id))
    for (gid, _), t in list(view.tasks.items()):
        if gid == e.graph_id and t.state == "pending" and not t.waiting_for:
            gate = t.tier == 3 and t.approved_by is None
            state = "pending" if gate else "ready"
            new = msgspec.structs.replace(
                t, state=state, ready_since=None if gate else e.occurred_at, awaiting_approval=gate, reason="", seq=seq
            )
            _put_task(view, new, seq)


def cancel_graph(view: ReadinessView, e: ev.GraphCancelled, seq: int) -> None:
    g = view.graphs.get(e.graph_id)
    if g is None:
        view.ignored.append(f"seq {seq}: GraphCancelled for unknown graph {e.graph_id}")
        return
    view.graphs[e.graph_id] = msgspec.structs.replace(
        g, cancelled_by=e.by, seq=seq, graph_version=g.graph_version + 1, graph_seq=seq
    )
    view.touched.add(graph_key(e.graph_id))
    why = f"graph cancelled by {e.by}" + (f": {e.reason}" if e.reason else "")
    for (gid, _), t in list(view.tasks.items()):
        if gid == e.graph_id and t.state not in rec.TERMINAL_STATES:
            new = msgspec.structs.replace(
                t, state="cancelled", reason=why, awaiting_approval=False, finished_at=e.occurred_at, seq=seq
            )
            _put_task(view, new, seq)


def generated(view: ReadinessView, e: ev.TasksGenerated | ev.GenerationLimitReached, seq: int) -> None:
    """Tasks a follow-up rule generated join their graph (waiting for their dependencies); a
    reached limit stops the graph's rules. Either is one more event on the graph's subjects."""
    g = view.graphs.get(e.graph_id)
    if g is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown graph {e.graph_id}")
        return
    g = msgspec.structs.replace(g, graph_version=g.graph_version + 1, graph_seq=seq, seq=seq)
    if isinstance(e, ev.GenerationLimitReached):
        view.graphs[e.graph_id] = msgspec.structs.replace(g, limit_reached=True)
        view.touched.add(graph_key(e.graph_id))
        return
    new = [x for x in e.generated if (e.graph_id, x.spec.id) not in view.tasks]
    fired = tuple(sorted({*g.fired, *(f"{x.rule}:{x.trigger_task}" for x in e.generated)}))
    g = msgspec.structs.replace(g, total=g.total + len(new), generated=g.generated + len(new), fired=fired)
    view.graphs[e.graph_id] = msgspec.structs.replace(g, finished_at=None) if new else g
    view.touched.add(graph_key(e.graph_id))
    for x in new:
        _add_generated(view, e, x, seq)


def _add_generated(view: ReadinessView, e: ev.TasksGenerated, x: rec.GeneratedTask, seq: int) -> None:
    t, gid = x.spec, e.graph_id
    deps = [view.tasks[(gid, d)] for d in t.depends_on if (gid, d) in view.tasks]
    for d in deps:  # the new task joins its dependencies' dependents
        _put_task(view, msgspec.structs.replace(d, dependents=tuple(sorted({*d.dependents, t.id})), seq=seq), seq)
    waiting = tuple(d.task_id for d in deps if d.state != "succeeded")
    doomed = next((d for d in deps if d.state in ("failed", "cancelled")), None)
    graph = view.graphs[gid]
    ended = f"dependency {doomed.task_id} {doomed.state}" if doomed else ""
    if graph.cancelled_by is not None:  # generated into a cancelled graph: born cancelled, as the graph's tasks
        ended = f"graph cancelled by {graph.cancelled_by}"
    parked = graph.backlog_priority is not None and not graph.backlog_taken  # released when the graph is taken
    free = not waiting and not parked
    gate = free and t.tier == 3
    state: rec.TaskState = "cancelled" if ended else ("ready" if free and not gate else "pending")
    held = () if ended else _hold_back(view, gid, t, x.before, seq)
    _put_task(
        view,
        TaskView(
            graph_id=gid, task_id=t.id, title=t.title, type=t.type, command=t.command, state=state,
            depends_on=t.depends_on, waiting_for=waiting, ready_since=e.occurred_at if state == "ready" else None,
            dependents=held,
            max_attempts=t.max_attempts, tier=t.tier, estimate_s=t.estimate_s, timeout_s=t.timeout_s,
            priority=t.priority, labels=t.labels, env=t.env, scope=t.scope, preflight=t.preflight, seq=seq,
            depth=max((d.depth for d in deps), default=-1) + 1, rank_s=t.estimate_s or 0.0,
            awaiting_approval=gate and not ended, origin=x.reason,
            output_decls=t.outputs, source_tree=_source_tree(view, gid, x.trigger_task),
            reason=ended, finished_at=e.occurred_at if ended else None,
        ),
        seq,
    )  # fmt: skip


def _source_tree(view: ReadinessView, gid: str, trigger: str) -> str:
    """The graph's source manifest, as its triggering task has it ("" without a source)."""
    t = view.tasks.get((gid, trigger))
    return t.source_tree if t is not None else ""


def _hold_back(view: ReadinessView, gid: str, spec: rec.TaskSpec, before: tuple[str, ...], seq: int) -> tuple[str, ...]:
    """The ``before`` tasks not released yet (unfinished, still waiting for a dependency) also wait
    for the new task; those already ready or further are left alone. Returns the ones held."""
    new = spec.id
    held: list[str] = []
    for b in before:
        t = view.tasks.get((gid, b))
        if t is None or t.state in rec.TERMINAL_STATES or not t.waiting_for or new in t.depends_on:
            continue
        if lc.closes_cycle(lambda k: spec.depends_on if k == new else _deps(view, gid, k), new, b):
            continue
        deps, waiting = (*t.depends_on, new), (*t.waiting_for, new)
        _put_task(view, msgspec.structs.replace(t, depends_on=deps, waiting_for=waiting, seq=seq), seq)
        held.append(b)
    return tuple(sorted(held))


def _deps(view: ReadinessView, gid: str, task: str) -> tuple[str, ...]:
    t = view.tasks.get((gid, task))
    return t.depends_on if t is not None else ()


def graph_part(view: ReadinessView, e: ev.GraphSubmitted | ev.GraphTasksAdded, seq: int) -> None:
    whole = view.assembly.add(e)
    if whole is not None:
        _submit(view, whole, seq, e.part + 1 if isinstance(e, ev.GraphTasksAdded) else 1)

"""The readiness view: each task's state, what it waits for and who waits for it; graph totals.

``evolve_readiness`` is the pure fold. The view is owned by its fold: evolve replaces the
frozen entries it touches and records their KV keys in ``touched`` so that the runner writes
only what an event changed (a completion rewrites the task, its direct dependents and the
graph's totals). Ranks, depths and downstream counts are static per graph (`graphrank`),
computed once when the graph is complete.

Every event on a task's subject tree (``ev.task.<g>.<t>.>``) advances that task's ``last_seq``
and ``version``, also one the view ignores (a late result), because the decider guards its next
dispatch on exactly that sequence. Rules, mirroring the write side (`orchestrator.taskrules`):

- a failed attempt with attempts left makes the task ready again, unless the agent marked the
  failure not retryable; the last one fails it and cancels everything downstream;
- ``TaskLost`` (the attempt's node or agent is gone) makes the task ready again as a new
  attempt; the ``QUARANTINE_AFTER``-th loss fails it as poison (Dask's rule);
- a tier-3 task whose dependencies succeeded stays ``pending`` with ``awaiting_approval`` until
  ``TaskApproved``; ``TaskRejected``/``TaskCancelled`` cancel it and everything downstream;
  ``GraphCancelled`` cancels every unfinished task of the graph;
- a tier-2 preflight (``phase="preflight"``) holds the task as ``dispatched``; passing makes it
  ready again with ``preflight_state="passed"``, failing fails it;
- a start, result or loss from an attempt that does not hold the task changes nothing but the
  sequence (and is noted in ``ignored``);
- a completion is folded with the outcome the quality threshold judges
  (`projections.feedback.judge`: a success whose ``quality`` is below it is ``partial``); a
  partial run counts as done: the task succeeds with ``outcome="partial"`` and the reason, and
  its dependents are released (the work exists; it is below the bar, not broken).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.submission import GraphAssembly
from orchestrator.taskrules import QUARANTINE_AFTER
from projections.feedback import QualityGate, judged_event
from projections.fold import rule_for
from projections.graphrank import graph_shapes
from projections.readiness_entries import HELD as HELD
from projections.readiness_entries import GraphView as GraphView
from projections.readiness_entries import TaskView as TaskView
from schemas import events as ev
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


def _count(counts: dict[str, int], old: str | None, new: str) -> dict[str, int]:
    out = dict(counts)
    if old is not None:
        out[old] = out.get(old, 0) - 1
    out[new] = out.get(new, 0) + 1
    return out


def _done(counts: dict[str, int], total: int) -> bool:
    """`GraphView.done` of these counts."""
    return sum(counts.get(s, 0) for s in ev.TERMINAL_STATES) == total


def _put_task(view: ReadinessView, new: TaskView, seq: int) -> None:
    key = (new.graph_id, new.task_id)
    old = view.tasks.get(key)
    view.tasks[key] = new
    view.touched.add(readiness_key(new.graph_id, new.task_id))
    state = new.state
    if state == "ready":
        view.ready.add(key)
    else:
        view.ready.discard(key)
    if old is None or old.state != state:
        g = view.graphs[new.graph_id]
        counts = _count(g.counts, old.state if old else None, state)
        if state in ev.TERMINAL_STATES and g.finished_at is None and _done(counts, g.total):
            g = msgspec.structs.replace(g, counts=counts, seq=seq, finished_at=new.finished_at)
        else:
            g = msgspec.structs.replace(g, counts=counts, seq=seq)
        view.graphs[new.graph_id] = g
        view.touched.add(graph_key(new.graph_id))


def _put_graph_tasks(view: ReadinessView, graph_id: str, tasks: list[TaskView], seq: int) -> None:
    """`_put_task` for each of ``tasks`` (all of graph ``graph_id``) in order, the graph's totals
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
            if state in ev.TERMINAL_STATES and finished_at is None and _done(counts, g.total):
                finished_at = new.finished_at
    if counts is not None:
        view.graphs[graph_id] = msgspec.structs.replace(g, counts=counts, seq=seq, finished_at=finished_at)
        touched.add(graph_key(graph_id))


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
    for t, shape in zip(e.tasks, shapes, strict=True):
        free = not t.depends_on and not held
        gate = free and t.tier == 3
        ready = free and not gate
        new = TaskView(
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
            depth=shape.depth,
            rank_s=shape.rank_s,
            downstream=shape.downstream,
            awaiting_approval=gate,
            reason=held,
        )
        views.append(new)
    _put_graph_tasks(view, e.graph_id, views, seq)


def _taken(view: ReadinessView, e: ev.BacklogItemTaken, seq: int) -> None:
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


def _release_dependents(view: ReadinessView, done: TaskView, at: datetime, seq: int) -> None:
    for dep_id in done.dependents:
        dep = view.tasks.get((done.graph_id, dep_id))
        if dep is None:
            continue
        waiting = tuple(w for w in dep.waiting_for if w != done.task_id)
        free = not waiting and dep.state == "pending"
        gate = free and dep.tier == 3 and dep.approved_by is None
        ready = free and not gate
        _put_task(
            view,
            msgspec.structs.replace(
                dep,
                waiting_for=waiting,
                state="ready" if ready else dep.state,
                ready_since=at if ready else dep.ready_since,
                awaiting_approval=gate,
                seq=seq,
            ),
            seq,
        )


def _cancel_downstream(view: ReadinessView, root: TaskView, why: str, seq: int) -> None:
    stack = list(root.dependents)
    while stack:
        tid = stack.pop()
        dep = view.tasks.get((root.graph_id, tid))
        if dep is None or dep.state in ev.TERMINAL_STATES:
            continue
        reason = f"dependency {root.task_id} {why}"
        new = msgspec.structs.replace(dep, state="cancelled", reason=reason, awaiting_approval=False, seq=seq)
        _put_task(view, new, seq)
        stack.extend(dep.dependents)


def _end(view: ReadinessView, t: TaskView, state: str, reason: str, at: datetime, seq: int, **more: object) -> None:
    """Put a task in a terminal state and cancel what depends on it (unless it succeeded)."""
    done = msgspec.structs.replace(t, state=state, reason=reason, awaiting_approval=False, finished_at=at, **more)
    _put_task(view, done, seq)
    if state == "succeeded":
        _release_dependents(view, done, at, seq)
    else:
        _cancel_downstream(view, done, "failed" if state == "failed" else "cancelled", seq)


def _again(view: ReadinessView, t: TaskView, reason: str, at: datetime, seq: int, **more: object) -> None:
    _put_task(view, msgspec.structs.replace(t, state="ready", ready_since=at, reason=reason, **more), seq)


def _complete(view: ReadinessView, t: TaskView, e: ev.TaskCompleted, seq: int) -> None:
    facts = dict(exit_code=e.exit_code, duration_s=e.duration_s, outcome=e.outcome)
    if e.phase == "preflight":
        if e.outcome == "failure":
            _end(
                view, t, "failed", f"preflight failed: {e.error}", e.occurred_at, seq, preflight_state="failed", **facts
            )
        else:
            _again(view, t, "preflight passed", e.occurred_at, seq, preflight_state="passed")
    elif e.outcome in ("success", "partial"):
        _end(view, t, "succeeded", e.error if e.outcome == "partial" else "", e.occurred_at, seq, **facts)
    elif e.attempt < t.max_attempts and e.retryable:
        kind = "timeout" if e.error.startswith("timed out") else "failure"
        _again(
            view,
            t,
            f"attempt {e.attempt} failed: {e.error}",
            e.occurred_at,
            seq,
            finished_at=e.occurred_at,
            failed_on=e.node_id,
            failure_kind=kind,
            **facts,
        )
    else:
        _end(view, t, "failed", e.error, e.occurred_at, seq, **facts)


def _lost(view: ReadinessView, t: TaskView, e: ev.TaskLost, seq: int) -> None:
    lost = t.lost + 1
    if lost >= QUARANTINE_AFTER:
        why = f"quarantined: lost {lost} times (last: attempt {e.attempt} on {e.node_id}: {e.reason})"
        _end(view, t, "failed", why, e.occurred_at, seq, lost=lost)
    else:
        _again(
            view,
            t,
            f"attempt {e.attempt} lost on {e.node_id}: {e.reason}",
            e.occurred_at,
            seq,
            lost=lost,
            failed_on=e.node_id,
            failure_kind="lost",
        )


def _holds(t: TaskView, e: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> bool:
    return t.state in HELD and t.node == e.node_id and t.attempt == e.attempt


def _stale(view: ReadinessView, t: TaskView, e: ev.AnyEvent, seq: int) -> None:
    view.ignored.append(
        f"seq {seq}: {type(e).__name__} for {t.graph_id}/{t.task_id} ignored: it is {t.state}"
        f" (attempt {t.attempt} on {t.node})"
    )


def _on_dispatched(view: ReadinessView, t: TaskView, e: ev.TaskDispatched, seq: int) -> bool:
    if t.state != "ready":
        return False
    pre = "running" if e.phase == "preflight" else t.preflight_state
    attempt = t.attempt if e.phase == "preflight" else e.attempt
    new = msgspec.structs.replace(
        t, state="dispatched", node=e.node_id, attempt=attempt, reason="", preflight_state=pre
    )
    _put_task(view, new, seq)
    return True


def _on_started(view: ReadinessView, t: TaskView, e: ev.TaskStarted, seq: int) -> bool:
    if t.state != "dispatched" or not _holds(t, e):
        return False
    _put_task(view, msgspec.structs.replace(t, state="running", started_at=e.occurred_at), seq)
    return True


def _on_completed(view: ReadinessView, t: TaskView, e: ev.TaskCompleted, seq: int) -> bool:
    if not _holds(t, e):
        return False
    _complete(view, t, e, seq)
    return True


def _on_lost(view: ReadinessView, t: TaskView, e: ev.TaskLost, seq: int) -> bool:
    if not _holds(t, e):
        return False
    _lost(view, t, e, seq)
    return True


def _on_cancelled(view: ReadinessView, t: TaskView, e: ev.TaskCancelled | ev.TaskRejected, seq: int) -> bool:
    if t.state in ev.TERMINAL_STATES:
        return False
    verb = "rejected" if isinstance(e, ev.TaskRejected) else "cancelled"
    _end(view, t, "cancelled", f"{verb} by {e.by}" + (f": {e.reason}" if e.reason else ""), e.occurred_at, seq)
    return True


def _on_approved(view: ReadinessView, t: TaskView, e: ev.TaskApproved, seq: int) -> bool:
    if t.state in ev.TERMINAL_STATES or t.approved_by is not None:
        return False
    new = msgspec.structs.replace(t, approved_by=e.by, awaiting_approval=False)
    if t.awaiting_approval and t.state == "pending":
        new = msgspec.structs.replace(new, state="ready", ready_since=e.occurred_at)
    _put_task(view, new, seq)
    return True


# What an event of a task's own subject tree does to the task; False: it does not fit the
# task's state (a stale attempt, a second end), noted and ignored by `_apply_task`.
_TASK_RULES: dict[type, Callable[[ReadinessView, TaskView, Any, int], bool]] = {
    ev.TaskDispatched: _on_dispatched,
    ev.TaskStarted: _on_started,
    ev.TaskCompleted: _on_completed,
    ev.TaskLost: _on_lost,
    ev.TaskCancelled: _on_cancelled,
    ev.TaskRejected: _on_cancelled,
    ev.TaskApproved: _on_approved,
}


def _apply_task(view: ReadinessView, t: TaskView, e: ev.AnyEvent, seq: int) -> None:
    """Apply one event of the task's own subject tree to ``t`` (already sequence-stamped)."""
    rule = _TASK_RULES.get(type(e)) or rule_for(_TASK_RULES, e, "readiness")
    if not rule(view, t, e, seq):
        _stale(view, t, e, seq)
        _put_task(view, t, seq)


TaskSubjectEvent = (
    ev.TaskDispatched
    | ev.TaskStarted
    | ev.TaskCompleted
    | ev.TaskLost
    | ev.TaskCancelled
    | ev.TaskApproved
    | ev.TaskRejected
)


def _task_event(view: ReadinessView, e: TaskSubjectEvent, seq: int) -> None:
    t = view.tasks.get((e.graph_id, e.task_id))
    if t is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown task {e.graph_id}/{e.task_id}")
        return
    # the two most frequent moves stamp and move the task in one replace (the same value as
    # stamping first and then applying the rule of `_apply_task`)
    if type(e) is ev.TaskDispatched and t.state == "ready":
        pre = "running" if e.phase == "preflight" else t.preflight_state
        attempt = t.attempt if e.phase == "preflight" else e.attempt
        new = msgspec.structs.replace(
            t,
            last_seq=seq,
            version=t.version + 1,
            seq=seq,
            state="dispatched",
            node=e.node_id,
            attempt=attempt,
            reason="",
            preflight_state=pre,
        )
        _put_task(view, new, seq)
        return
    if type(e) is ev.TaskStarted and t.state == "dispatched" and _holds(t, e):
        new = msgspec.structs.replace(
            t, last_seq=seq, version=t.version + 1, seq=seq, state="running", started_at=e.occurred_at
        )
        _put_task(view, new, seq)
        return
    stamped = msgspec.structs.replace(t, last_seq=seq, version=t.version + 1, seq=seq)
    _apply_task(view, stamped, e, seq)


def _cancel_graph(view: ReadinessView, e: ev.GraphCancelled, seq: int) -> None:
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
        if gid == e.graph_id and t.state not in ev.TERMINAL_STATES:
            new = msgspec.structs.replace(
                t, state="cancelled", reason=why, awaiting_approval=False, finished_at=e.occurred_at, seq=seq
            )
            _put_task(view, new, seq)


def _generated(view: ReadinessView, e: ev.TasksGenerated | ev.GenerationLimitReached, seq: int) -> None:
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


def _add_generated(view: ReadinessView, e: ev.TasksGenerated, x: ev.GeneratedTask, seq: int) -> None:
    t, gid = x.spec, e.graph_id
    deps = [view.tasks[(gid, d)] for d in t.depends_on if (gid, d) in view.tasks]
    for d in deps:  # the new task joins its dependencies' dependents
        _put_task(view, msgspec.structs.replace(d, dependents=tuple(sorted({*d.dependents, t.id})), seq=seq), seq)
    waiting = tuple(d.task_id for d in deps if d.state != "succeeded")
    doomed = next((d for d in deps if d.state in ("failed", "cancelled")), None)
    free = not waiting
    gate = free and t.tier == 3
    state: ev.TaskState = "cancelled" if doomed else ("ready" if free and not gate else "pending")
    held = () if doomed else _hold_back(view, gid, t.id, x.before, seq)
    _put_task(
        view,
        TaskView(
            graph_id=gid, task_id=t.id, title=t.title, type=t.type, command=t.command, state=state,
            depends_on=t.depends_on, waiting_for=waiting, ready_since=e.occurred_at if state == "ready" else None,
            dependents=held,
            max_attempts=t.max_attempts, tier=t.tier, estimate_s=t.estimate_s, timeout_s=t.timeout_s,
            priority=t.priority, labels=t.labels, env=t.env, scope=t.scope, preflight=t.preflight, seq=seq,
            depth=max((d.depth for d in deps), default=-1) + 1, rank_s=t.estimate_s or 0.0,
            awaiting_approval=gate and not doomed, origin=x.reason,
            reason=f"dependency {doomed.task_id} {doomed.state}" if doomed else "",
            finished_at=e.occurred_at if doomed else None,
        ),
        seq,
    )  # fmt: skip


def _hold_back(view: ReadinessView, gid: str, new: str, before: tuple[str, ...], seq: int) -> tuple[str, ...]:
    """The ``before`` tasks not released yet (unfinished, still waiting for a dependency) also wait
    for the new task; those already ready or further are left alone. Returns the ones held."""
    held: list[str] = []
    for b in before:
        t = view.tasks.get((gid, b))
        if t is None or t.state in ev.TERMINAL_STATES or not t.waiting_for or new in t.depends_on:
            continue
        deps, waiting = (*t.depends_on, new), (*t.waiting_for, new)
        _put_task(view, msgspec.structs.replace(t, depends_on=deps, waiting_for=waiting, seq=seq), seq)
        held.append(b)
    return tuple(sorted(held))


def _graph_part(view: ReadinessView, e: ev.GraphSubmitted | ev.GraphTasksAdded, seq: int) -> None:
    whole = view.assembly.add(e)
    if whole is not None:
        _submit(view, whole, seq, e.part + 1 if isinstance(e, ev.GraphTasksAdded) else 1)


def _completed(view: ReadinessView, e: ev.TaskCompleted, seq: int) -> None:
    view.quality, judged = judged_event(view.quality, e)  # the quality threshold's verdict
    _task_event(view, judged, seq)


def _nothing(view: ReadinessView, e: ev.AnyEvent, seq: int) -> None:
    pass


# What each event type does to the view, looked up by the exact type (one dict lookup instead
# of a chain of class patterns; a subclass finds its base's rule through `rule_for`).
_RULES: dict[type, Callable[[ReadinessView, Any, int], None]] = {
    ev.GraphSubmitted: _graph_part,
    ev.GraphTasksAdded: _graph_part,
    ev.TaskCompleted: _completed,
    ev.TaskDispatched: _task_event,
    ev.TaskStarted: _task_event,
    ev.TaskLost: _task_event,
    ev.TaskCancelled: _task_event,
    ev.TaskApproved: _task_event,
    ev.TaskRejected: _task_event,
    ev.GraphCancelled: _cancel_graph,
    ev.TasksGenerated: _generated,
    ev.GenerationLimitReached: _generated,
    ev.BacklogItemTaken: _taken,
    ev.NodeRegistered: _nothing,
    ev.NodeObserved: _nothing,
    ev.NodeLost: _nothing,
    ev.NodeDrainRequested: _nothing,
    ev.PredictionExpired: _nothing,
    ev.AutonomyChanged: _nothing,
    ev.Unschedulable: _nothing,
    ev.Alert: _nothing,
}


def evolve_readiness(view: ReadinessView, event: ev.AnyEvent, seq: int) -> ReadinessView:
    """Apply one event (at stream sequence ``seq``) to the readiness view."""
    if seq <= view.seq:
        return view  # redelivery of what is already applied
    rule = _RULES.get(type(event)) or rule_for(_RULES, event, "readiness")
    rule(view, event, seq)
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


def readiness_keys(view: ReadinessView) -> set[str]:
    """Every KV key the view holds (for a rebuild)."""
    return {graph_key(g) for g in view.graphs} | {readiness_key(g, t) for g, t in view.tasks}

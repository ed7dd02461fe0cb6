"""The readiness view: each task's state, what it waits for and who waits for it; graph totals.

``evolve_readiness`` is the pure fold. The view is owned by its fold: evolve replaces the
frozen entries it touches and records their KV keys in ``touched`` so that the runner writes
only what an event changed (a completion rewrites the task, its direct dependents and the
graph's totals). Ranks, depths and downstream counts are static per graph (`graphrank`),
computed once when the graph is complete. Graph events are folded by `readiness_graphs`; the
view's state and its one write path (`put_task`) are `readiness_view`; the entries themselves
(`TaskView`, `GraphView`) are `readiness_entries`. This module folds a task's own events.

Every event on a task's subject tree (``ev.task.<g>.<t>.>``) advances that task's ``last_seq``
and ``version``, also one the view ignores (a late result), because the decider guards its next
dispatch on exactly that sequence. Rules, mirroring the write side (`orchestrator.writeside.taskrules`):

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
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.writeside.taskrules import QUARANTINE_AFTER
from projections.feedback import judged_event
from projections.fold import rule_for
from projections.readiness.entries import HELD as HELD
from projections.readiness.entries import GraphView as GraphView
from projections.readiness.entries import TaskView as TaskView
from projections.readiness.graphevents import cancel_graph, generated, graph_part, taken
from projections.readiness.view import ReadinessView as ReadinessView
from projections.readiness.view import put_known
from projections.readiness.view import put_task as _put_task
from schemas import events as ev
from schemas.subjects import graph_key, readiness_key


def _release_dependents(view: ReadinessView, done: TaskView, at: datetime, seq: int) -> None:
    graph_id, task_id, tasks = done.graph_id, done.task_id, view.tasks
    for dep_id in done.dependents:
        key = (graph_id, dep_id)
        dep = tasks.get(key)
        if dep is None:
            continue
        waiting = dep.waiting_for
        if waiting == (task_id,):  # the last one it waited for (the common case, without a loop)
            waiting = ()
        elif task_id in waiting:
            waiting = tuple([w for w in waiting if w != task_id])
        free = not waiting and dep.state == "pending"
        gate = free and dep.tier == 3 and dep.approved_by is None
        ready = free and not gate
        new = msgspec.structs.replace(
            dep,
            waiting_for=waiting,
            state="ready" if ready else dep.state,
            ready_since=at if ready else dep.ready_since,
            awaiting_approval=gate,
            seq=seq,
        )
        put_known(view, key, dep, new, seq)


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
    key = (e.graph_id, e.task_id)
    t = view.tasks.get(key)
    if t is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown task {e.graph_id}/{e.task_id}")
        return
    # the three most frequent moves (dispatch, start, a run that succeeded) stamp and move the
    # task in one replace (the same value as stamping first and then applying `_apply_task`'s rule)
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
        put_known(view, key, t, new, seq)
        return
    if type(e) is ev.TaskStarted and t.state == "dispatched" and t.node == e.node_id and t.attempt == e.attempt:
        new = msgspec.structs.replace(
            t, last_seq=seq, version=t.version + 1, seq=seq, state="running", started_at=e.occurred_at
        )
        put_known(view, key, t, new, seq)
        return
    if type(e) is ev.TaskCompleted and e.phase != "preflight" and e.outcome != "failure" and _holds(t, e):
        # a run that succeeded (or partly): what `_complete` does through `_end`, in one replace
        done = msgspec.structs.replace(
            t,
            last_seq=seq,
            version=t.version + 1,
            seq=seq,
            state="succeeded",
            reason=e.error if e.outcome == "partial" else "",
            awaiting_approval=False,
            finished_at=e.occurred_at,
            exit_code=e.exit_code,
            duration_s=e.duration_s,
            outcome=e.outcome,
        )
        put_known(view, key, t, done, seq)
        _release_dependents(view, done, e.occurred_at, seq)
        return
    stamped = msgspec.structs.replace(t, last_seq=seq, version=t.version + 1, seq=seq)
    _apply_task(view, stamped, e, seq)


def _completed(view: ReadinessView, e: ev.TaskCompleted, seq: int) -> None:
    view.quality, judged = judged_event(view.quality, e)  # the quality threshold's verdict
    _task_event(view, judged, seq)


def _nothing(view: ReadinessView, e: ev.AnyEvent, seq: int) -> None:
    pass


# What each event type does to the view, looked up by the exact type (one dict lookup instead
# of a chain of class patterns; a subclass finds its base's rule through `rule_for`).
_RULES: dict[type, Callable[[ReadinessView, Any, int], None]] = {
    ev.GraphSubmitted: graph_part,
    ev.GraphTasksAdded: graph_part,
    ev.TaskCompleted: _completed,
    ev.TaskDispatched: _task_event,
    ev.TaskStarted: _task_event,
    ev.TaskLost: _task_event,
    ev.TaskCancelled: _task_event,
    ev.TaskApproved: _task_event,
    ev.TaskRejected: _task_event,
    ev.GraphCancelled: cancel_graph,
    ev.TasksGenerated: generated,
    ev.GenerationLimitReached: generated,
    ev.BacklogItemTaken: taken,
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

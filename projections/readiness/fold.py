"""The readiness view: each task's state, what it waits for and who waits for it; graph totals.

``evolve_readiness`` is the pure fold. The view is owned by its fold: evolve replaces the
frozen entries it touches and records their KV keys in ``touched`` so that the runner writes
only what an event changed (a completion rewrites the task, its direct dependents and the
graph's totals). Ranks, depths and downstream counts are static per graph (`graphrank`),
computed once when the graph is complete. Graph events are folded by `graphevents`; the
view's state and its one write path (`put_task`) are in `view`; the entries themselves
(`TaskView`, `GraphView`) in `entries`. This module folds a task's own events.

Every event on a task's subject tree (``ev.task.<g>.<t>.>``) advances that task's ``last_seq``
and ``version``, also one the view ignores (a late result), because the decider guards its next
dispatch on exactly that sequence. What an event does to the task's state, attempt, holder,
losses, preflight and approval is the one task lifecycle (`orchestrator.decision.lifecycle`), which the
write side and ``verify`` use too; an event that does not fit it (a stale attempt, a second end,
a dispatch of a task not ``ready``) changes nothing but the sequence and is noted in ``ignored``.
This fold adds what only the view holds:

- a task waiting in the lifecycle is ``ready`` when every dependency succeeded (and, tier 3,
  it is approved), else ``pending`` (with ``awaiting_approval`` when only the approval is
  missing); a success releases its dependents, any other end cancels everything downstream;
  ``GraphCancelled`` cancels every unfinished task of the graph;
- a completion is folded with the outcome the quality threshold judges
  (`projections.feedback.judge`: a success whose ``quality`` is below it is ``partial``); a
  partial run counts as done: the task succeeds with ``outcome="partial"`` and the reason, and
  its dependents are released (the work exists; it is below the bar, not broken);
- reasons, times, the failed attempt's node and kind (the retry strategy's inputs).

The three most frequent moves have fast paths (`_fast_move`); the lifecycle property test folds
every history with and without them and requires the same view.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.decision import lifecycle as lc
from projections.feedback import judged_event
from projections.fold import rule_for
from projections.readiness import cache as cache_rules
from projections.readiness import health
from projections.readiness.entries import HELD as HELD
from projections.readiness.entries import GraphView as GraphView
from projections.readiness.entries import TaskView as TaskView
from projections.readiness.graphevents import cancel_graph, generated, graph_part, taken
from projections.readiness.view import ReadinessView as ReadinessView
from projections.readiness.view import put_known
from projections.readiness.view import put_task as _put_task
from schemas import actions as act
from schemas import events as ev
from schemas import records as rec
from schemas.ids import from_token
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
        more = cache_rules.keyed(dep, tasks) if free and dep.action_form else {}
        new = msgspec.structs.replace(
            dep,
            waiting_for=waiting,
            state="ready" if ready else dep.state,
            ready_since=at if ready else dep.ready_since,
            awaiting_approval=gate,
            seq=seq,
            **more,
        )
        put_known(view, key, dep, new, seq)


def _cancel_downstream(view: ReadinessView, root: TaskView, why: str, seq: int) -> None:
    stack = list(root.dependents)
    while stack:
        tid = stack.pop()
        dep = view.tasks.get((root.graph_id, tid))
        if dep is None or dep.state in rec.TERMINAL_STATES:
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


def _life(t: TaskView) -> lc.Life:
    """The task's place in the lifecycle, read off its entry."""
    state = t.state
    held = state in HELD
    return lc.Life(
        state=lc.of_task_state(state),
        attempt=t.attempt,
        node=t.node,
        phase="preflight" if held and t.preflight_state == "running" else "run",
        preflight=t.preflight_state,
        lost=t.lost,
        approved_by=t.approved_by,
    )


def _completed_move(view: ReadinessView, t: TaskView, e: ev.TaskCompleted, move: str, life: lc.Life, seq: int) -> None:
    facts = dict(exit_code=e.exit_code, duration_s=e.duration_s, outcome=e.outcome)
    pre, at = life.preflight, e.occurred_at
    if move == "preflight failed":
        _end(view, t, "failed", f"preflight failed: {e.error}", at, seq, preflight_state=pre, **facts)
    elif move == "passed":
        _again(view, t, "preflight passed", at, seq, preflight_state=pre)
    elif move == "succeeded":
        _end(view, t, "succeeded", e.error if e.outcome == "partial" else "", at, seq, outputs=e.outputs, **facts)
    elif move == "retry":
        kind = "timeout" if e.error.startswith("timed out") else "failure"
        why = f"attempt {e.attempt} failed: {e.error}"
        _again(view, t, why, at, seq, finished_at=at, failed_on=e.node_id, failure_kind=kind, **facts)
    else:
        _end(view, t, "failed", e.error, at, seq, **facts)


def _lost_move(view: ReadinessView, t: TaskView, e: ev.TaskLost, move: str, life: lc.Life, seq: int) -> None:
    more = dict(lost=life.lost, preflight_state=life.preflight)
    if move == "quarantined":
        why = f"quarantined: lost {life.lost} times (last: attempt {e.attempt} on {e.node_id}: {e.reason})"
        _end(view, t, "failed", why, e.occurred_at, seq, **more)
    else:
        why = f"attempt {e.attempt} lost on {e.node_id}: {e.reason}"
        _again(view, t, why, e.occurred_at, seq, failed_on=e.node_id, failure_kind="lost", **more)


def _stale(view: ReadinessView, t: TaskView, e: ev.AnyEvent, seq: int) -> None:
    view.ignored.append(
        f"seq {seq}: {type(e).__name__} for {t.graph_id}/{t.task_id} ignored: it is {t.state}"
        f" (attempt {t.attempt} on {t.node})"
    )


def _moved(view: ReadinessView, t: TaskView, e: lc.TaskEvent, move: str, life: lc.Life, seq: int) -> None:
    """What the lifecycle's ``move`` does to the task's entry and to the tasks that depend on it."""
    replace = msgspec.structs.replace
    match e:
        case ev.TaskDispatched():
            new = replace(
                t, state="dispatched", node=e.node_id, attempt=life.attempt, reason="", preflight_state=life.preflight
            )
            _put_task(view, new, seq)
        case ev.TaskStarted():
            _put_task(view, replace(t, state="running", started_at=e.occurred_at), seq)
        case ev.TaskCompleted():
            _completed_move(view, t, e, move, life, seq)
        case ev.TaskLost():
            _lost_move(view, t, e, move, life, seq)
        case ev.TaskCancelled() | ev.TaskRejected():
            verb = "rejected" if isinstance(e, ev.TaskRejected) else "cancelled"
            _end(view, t, "cancelled", f"{verb} by {e.by}" + (f": {e.reason}" if e.reason else ""), e.occurred_at, seq)
        case ev.TaskCacheHit():
            why = f"cache hit: {e.reason}" if e.reason else "cache hit"
            src = f"{e.reused_graph}/{e.reused_task} attempt {e.reused_attempt}"
            _end(view, t, "succeeded", why, e.occurred_at, seq, outputs=e.outputs, outcome="success", cache_hit=src)
        case ev.TaskApproved():
            new = replace(t, approved_by=e.by, awaiting_approval=False)
            if t.awaiting_approval and t.state == "pending":
                new = replace(new, state="ready", ready_since=e.occurred_at)
            _put_task(view, new, seq)


def apply_task(view: ReadinessView, t: TaskView, e: lc.TaskEvent, seq: int) -> None:
    """Apply one event of the task's own subject tree to ``t`` (already sequence-stamped) by the
    task lifecycle: an event that does not fit (a stale attempt, a second end, a dispatch of a
    task not ready) is noted in ``ignored`` and changes nothing but the sequence."""
    step = lc.next_state(_life(t), e, t)
    if not step.move or (type(e) in _NEED_READY and t.state != "ready"):
        _stale(view, t, e, seq)
        _put_task(view, t, seq)
        return
    _moved(view, t, e, step.move, step.life, seq)


_NEED_READY = (ev.TaskDispatched, ev.TaskCacheHit)  # decisions: only about a task whose dependencies succeeded
TaskSubjectEvent = lc.TaskEvent  # the events of a task's own subject tree


def _task_event(view: ReadinessView, e: TaskSubjectEvent, seq: int, fast: bool = True) -> None:
    key = (e.graph_id, e.task_id)
    t = view.tasks.get(key)
    if t is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown task {e.graph_id}/{e.task_id}")
        return
    if fast and _fast_move(view, key, t, e, seq):
        return
    stamped = msgspec.structs.replace(t, last_seq=seq, version=t.version + 1, seq=seq)
    apply_task(view, stamped, e, seq)


def _fast_move(view: ReadinessView, key: tuple[str, str], t: TaskView, e: TaskSubjectEvent, seq: int) -> bool:
    """The three most frequent moves (a run's dispatch, its start, its success) stamped and made in
    one replace: the same value as stamping and then `apply_task` (the lifecycle property test
    folds every history both ways). False: not one of them; the general rule applies."""
    if isinstance(e, ev.TaskDispatched):
        return _fast_dispatch(view, key, t, e, seq)
    if isinstance(e, ev.TaskStarted):
        if not (t.state == "dispatched" and t.node == e.node_id and t.attempt == e.attempt):
            return False
        new = msgspec.structs.replace(
            t, last_seq=seq, version=t.version + 1, seq=seq, state="running", started_at=e.occurred_at
        )
        put_known(view, key, t, new, seq)
        return True
    if isinstance(e, ev.TaskCompleted):
        return _fast_success(view, key, t, e, seq)
    return False


def _fast_dispatch(view: ReadinessView, key: tuple[str, str], t: TaskView, e: ev.TaskDispatched, seq: int) -> bool:
    if not (t.state == "ready" and e.phase == "run" and e.attempt == t.attempt + 1):
        return False
    if (t.tier == 2 and t.preflight and t.preflight_state != "passed") or (t.tier == 3 and t.approved_by is None):
        return False
    new = msgspec.structs.replace(
        t,
        last_seq=seq,
        version=t.version + 1,
        seq=seq,
        state="dispatched",
        node=e.node_id,
        attempt=e.attempt,
        reason="",
    )
    put_known(view, key, t, new, seq)
    return True


def _fast_success(view: ReadinessView, key: tuple[str, str], t: TaskView, e: ev.TaskCompleted, seq: int) -> bool:
    if e.phase != "run" or e.outcome == "failure" or t.state not in HELD or t.preflight_state == "running":
        return False
    if (t.node, t.attempt) != (e.node_id, e.attempt):
        return False
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
        outputs=e.outputs,
    )
    put_known(view, key, t, done, seq)
    _release_dependents(view, done, e.occurred_at, seq)
    return True


def _completed(view: ReadinessView, e: ev.TaskCompleted, seq: int, fast: bool = True) -> None:
    view.quality, judged = judged_event(view.quality, e)  # the quality threshold's verdict
    key = (e.graph_id, e.task_id)
    before = view.tasks.get(key)
    _task_event(view, judged, seq, fast)
    health.learn(view, before, judged, seq)
    if before is not None and before.action_key:
        after = view.tasks[key]
        entry = cache_rules.entry_of(before, after, judged, seq)
        if entry is not None:
            cache_rules.remember(view.cache, view.touched, entry, after, seq)


def _cache_hit(view: ReadinessView, e: ev.TaskCacheHit, seq: int) -> None:
    key = (e.graph_id, e.task_id)
    before = view.tasks.get(key)
    _task_event(view, e, seq)
    after = view.tasks.get(key)
    if before is not None and after is not None and before.state != "succeeded" and after.state == "succeeded":
        cache_rules.remember(view.cache, view.touched, None, after, seq)


def _revoked(view: ReadinessView, e: ev.CacheEntryRevoked, seq: int) -> None:
    why = cache_rules.revoke(view.cache, view.touched, e, seq)
    if why:
        view.ignored.append(why)


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
    ev.TaskCacheHit: _cache_hit,
    ev.CacheEntryRevoked: _revoked,
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
    act.Alert: _nothing,
    act.GraphPaused: health.paused,
    act.GraphResumed: health.paused,
    act.CarefulModeEntered: _nothing,
    act.CarefulModeLeft: _nothing,
    act.NodeScaleDownProposed: _nothing,
    act.NodeScaleUpProposed: health.scale_up,
}


def evolve_readiness(view: ReadinessView, event: ev.AnyEvent, seq: int, *, fast: bool = True) -> ReadinessView:
    """Apply one event (at stream sequence ``seq``) to the readiness view; ``fast=False`` skips
    the fast paths (the same result, slower: for the test that proves it)."""
    if seq <= view.seq:
        return view  # redelivery of what is already applied
    rule = _RULES.get(type(event)) or rule_for(_RULES, event, "readiness")
    if not fast and isinstance(event, ev.TaskCompleted):
        _completed(view, event, seq, False)
    elif not fast and rule is _task_event:
        _task_event(view, event, seq, False)  # type: ignore[arg-type]  # the rule table says it is one
    else:
        rule(view, event, seq)
    view.seq = seq
    return view


def readiness_values(view: ReadinessView, keys: set[str]) -> dict[str, msgspec.Struct]:
    """The current value of each KV key in ``keys``."""
    out: dict[str, msgspec.Struct] = {}
    for key in keys:
        kind, _, rest = key.partition(".")
        if kind == "graph":
            out[key] = view.graphs[from_token(rest)]
        elif kind == health.HEALTH_KEY:
            assert view.health is not None
            out[key] = view.health
        elif kind in _CACHE_KINDS:
            out[key] = view.cache[key]
        else:
            g, _, t = rest.partition(".")
            out[key] = view.tasks[(from_token(g), from_token(t))]
    return out


def readiness_keys(view: ReadinessView) -> set[str]:
    """Every KV key the view holds (for a rebuild)."""
    keys = {graph_key(g) for g in view.graphs} | {readiness_key(g, t) for g, t in view.tasks} | set(view.cache)
    return keys | ({health.HEALTH_KEY} if view.health is not None else set())


_CACHE_KINDS = frozenset({"cache", "cachelast"})

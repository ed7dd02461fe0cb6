"""Generating follow-up work: the decision loop's "generate tasks" candidate, pure.

``generate(tasks, graphs, seqs, now, ...)`` looks at each live graph that has follow-up rules
(`schemas.records.FollowUpRule`, validated by `orchestrator.graphs.rulecheck`) and returns at most one
decision per graph:

- `TasksGenerated` with a task for each (rule, finished task) pair not yet acted on whose task
  matches the rule's ``when``, whose outcome is in its ``on``, where no task matching
  ``unless`` exists and no task already has the template's id; each generated task records
  the rule, the triggering task, its outcome and sequence, and the reason in words;
- `GenerationLimitReached` once the graph's ``generation_limit`` is used up and a rule still
  wants to fire (then the graph's rules stop).

Each decision is guarded by the graph's subject sequence (``graph_seq`` in the readiness view)
and carries the next graph version, so of two deciders deciding on the same views only one
append succeeds. Rules fire on triggers in (task id, rule order) order; nothing here reads a
clock or iterates a set or dict without sorting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase

import msgspec

from orchestrator.graphs.rulecheck import expand, placeholders
from projections.readiness.fold import GraphView, TaskView
from schemas import events as ev
from schemas import records as rec
from schemas.ids import token

PER_EVENT = 200  # generated tasks per event: the rest come next round (one message stays far below 1 MB)


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    """A generation decision to append, with the guard that makes a stale one fail."""

    event: ev.TasksGenerated | ev.GenerationLimitReached
    expected_seq: int
    version: int


def selects(sel: rec.TaskSelector, t: TaskView, values: Mapping[str, str]) -> bool:
    """Whether task ``t`` matches selector ``sel`` (``values`` fill its placeholders)."""
    if sel.type and t.type != sel.type:
        return False
    if sel.id and not fnmatchcase(t.task_id, expand(sel.id, dict(values))):
        return False
    if any(t.labels.get(k) != v for k, v in sel.labels.items()):
        return False
    return not sel.depends_on or expand(sel.depends_on, dict(values)) in t.depends_on


def _may_select(sel: rec.TaskSelector, t: TaskView) -> bool:
    """The placeholder-free part of `selects`: a cheap first filter (most tasks fail it)."""
    if sel.type and t.type != sel.type:
        return False
    return not sel.labels or all(t.labels.get(k) == v for k, v in sel.labels.items())


class _Cover:
    """Which triggers an ``unless`` selector covers, from one pass over the graph's tasks (so a
    round costs O(tasks) per rule, not O(tasks) per trigger)."""

    def __init__(self, sel: rec.TaskSelector, tasks: Iterable[TaskView]) -> None:
        self.sel = sel
        self.dynamic_id = bool(placeholders(sel.id))
        self.static = [
            o
            for o in tasks
            if (not sel.type or o.type == sel.type)
            and all(o.labels.get(k) == v for k, v in sel.labels.items())
            and (self.dynamic_id or not sel.id or fnmatchcase(o.task_id, sel.id))
        ]
        self.deps = {d for o in self.static for d in o.depends_on}

    def covers(self, values: Mapping[str, str]) -> bool:
        """Whether some task matches the selector for this trigger's ``values``."""
        if self.dynamic_id:
            return any(selects(self.sel, o, values) for o in self.static)
        if not self.sel.depends_on:
            return bool(self.static)
        return expand(self.sel.depends_on, dict(values)) in self.deps


def _describe(sel: rec.TaskSelector, values: Mapping[str, str]) -> str:
    parts = [f"type {sel.type}"] if sel.type else []
    parts += [f"id {sel.id}"] if sel.id else []
    parts += [f"{k}={v}" for k, v in sorted(sel.labels.items())]
    parts += [f"depending on {expand(sel.depends_on, dict(values))}"] if sel.depends_on else []
    return ", ".join(parts) or "any task"


def expand_task(rule: rec.FollowUpRule, values: Mapping[str, str]) -> rec.TaskSpec:
    """The rule's template with its placeholders filled."""
    v = dict(values)
    t = rule.task
    return msgspec.structs.replace(
        t,
        id=expand(t.id, v),
        title=expand(t.title, v),
        command=expand(t.command, v),
        depends_on=tuple(dict.fromkeys(expand(d, v) for d in t.depends_on)),
    )


def _values(g: GraphView, rule: rec.FollowUpRule, t: TaskView, n: int) -> dict[str, str]:
    return {
        "task": t.task_id,
        "title": t.title,
        "type": t.type,
        "outcome": t.outcome,
        "graph": g.graph_id,
        "rule": rule.name,
        "n": str(n),
    }


def _wanted(g: GraphView, tasks: list[TaskView]) -> list[rec.GeneratedTask]:
    """Every task the graph's rules want now, before the limit."""
    by_id = {t.task_id: t for t in tasks}
    ids = set(by_id)
    fired = set(g.fired)
    covers: dict[str, _Cover] = {}
    out: list[rec.GeneratedTask] = []
    for t in tasks:
        if t.state not in ("succeeded", "failed") or not t.outcome:
            continue
        for rule in g.rules:
            if t.outcome not in rule.on or not _may_select(rule.when, t) or f"{rule.name}:{t.task_id}" in fired:
                continue
            if rule.unless is not None and rule.name not in covers:
                covers[rule.name] = _Cover(rule.unless, tasks)
            x = _fire(g, rule, t, by_id, ids, covers.get(rule.name), g.generated + len(out) + 1)
            if x is not None:
                out.append(x)
                ids.add(x.spec.id)
    return out


def _fire(
    g: GraphView,
    rule: rec.FollowUpRule,
    t: TaskView,
    by_id: Mapping[str, TaskView],
    ids: set[str],
    cover: _Cover | None,
    n: int,
) -> rec.GeneratedTask | None:
    """The task ``rule`` generates after ``t`` ended, or None (no match, covered, or already there)."""
    values = _values(g, rule, t, n)
    if (rule.when.id or rule.when.depends_on) and not selects(rule.when, t, values):
        return None  # (type and labels were checked by `_may_select`)
    if expand(rule.task.id, values) in ids or (cover is not None and cover.covers(values)):
        return None  # the task exists already, or a task covers the trigger
    spec = expand_task(rule, values)
    if any(d not in ids for d in spec.depends_on):
        return None  # a dependency does not exist (yet): nothing to add
    before = held_back(rule, spec, by_id, values)
    reason = (
        f"rule {rule.name}: {t.task_id} ended {t.outcome} ({_describe(rule.when, values)})"
        + (f" and no task matches {_describe(rule.unless, values)}" if rule.unless is not None else "")
        + (f"; {', '.join(before)} wait for it" if before else "")
    )
    return rec.GeneratedTask(
        spec=spec,
        rule=rule.name,
        trigger_task=t.task_id,
        trigger_outcome=t.outcome,
        trigger_seq=t.last_seq,
        reason=reason,
        before=before,
    )


def _upstream(by_id: Mapping[str, TaskView], start: tuple[str, ...]) -> set[str]:
    """Every task ``start`` depends on, transitively, that has not succeeded (``start`` included)."""
    seen: set[str] = set()
    stack = [d for d in start if d in by_id and by_id[d].state != "succeeded"]
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        stack.extend(d for d in by_id[tid].depends_on if d in by_id and by_id[d].state != "succeeded")
    return seen


def held_back(
    rule: rec.FollowUpRule, spec: rec.TaskSpec, by_id: Mapping[str, TaskView], values: Mapping[str, str]
) -> tuple[str, ...]:
    """The rule's ``before`` tasks that may wait for the generated task: they exist, are not
    released yet (still waiting for a dependency) and are not upstream of it (no cycle)."""
    if not rule.before:
        return ()
    upstream = _upstream(by_id, spec.depends_on)
    out: list[str] = []
    for b in dict.fromkeys(expand(x, dict(values)) for x in rule.before):
        t = by_id.get(b)
        if t is None or b == spec.id or b in upstream or t.state != "pending" or not t.waiting_for:
            continue
        out.append(b)
    return tuple(out)


def generate_for(
    g: GraphView, tasks: list[TaskView], seqs: Mapping[str, int], now: datetime, decider_id: str, version: str
) -> Generation | None:
    """The generation decision for one graph (``tasks``: its tasks in id order), or None."""
    if not g.rules or g.limit_reached or g.cancelled_by is not None:
        return None
    wanted = _wanted(g, tasks)
    if not wanted:
        return None
    room = max(g.generation_limit - g.generated, 0)
    common = dict(occurred_at=now, correlation_id=g.graph_id, graph_id=g.graph_id, now=now)
    view_seqs = dict(sorted(seqs.items()))
    guard = dict(expected_seq=g.graph_seq, version=g.graph_version + 1)
    if room == 0:
        reason = (
            f"graph {g.graph_id} generated {g.generated} tasks, its limit {g.generation_limit}; "
            f"rule {wanted[0].rule} wanted {len(wanted)} more"
        )
        limit = ev.GenerationLimitReached(
            event_id=f"generation-limit:{token(g.graph_id)}",
            causation_id=f"readiness@{wanted[0].trigger_seq}",
            limit=g.generation_limit,
            generated=g.generated,
            reason=reason,
            view_seqs=view_seqs,
            **common,  # type: ignore[arg-type]
        )
        return Generation(event=limit, **guard)
    take = tuple(wanted[: min(room, PER_EVENT)])
    event = ev.TasksGenerated(
        event_id=f"generate:{token(g.graph_id)}:{g.graph_version + 1}",
        causation_id=f"readiness@{max(x.trigger_seq for x in take)}",
        generated=take,
        view_seqs=view_seqs,
        decider_id=decider_id,
        decider_version=version,
        **common,  # type: ignore[arg-type]
    )
    return Generation(event=event, **guard)


def generate(
    tasks: Mapping[tuple[str, str], TaskView],
    graphs: Mapping[str, GraphView],
    seqs: Mapping[str, int],
    now: datetime,
    decider_id: str = "decider",
    version: str = "",
) -> list[Generation]:
    """Generation decisions for every graph with rules, in graph id order."""
    ruled = {gid for gid, g in graphs.items() if g.rules and not g.limit_reached and g.cancelled_by is None}
    if not ruled:
        return []
    by_graph: dict[str, list[TaskView]] = {gid: [] for gid in ruled}
    for (gid, _), t in tasks.items():
        if gid in by_graph:
            by_graph[gid].append(t)
    out: list[Generation] = []
    for gid in sorted(ruled):
        members = sorted(by_graph[gid], key=lambda t: t.task_id)
        d = generate_for(graphs[gid], members, seqs, now, decider_id, version)
        if d is not None:
            out.append(d)
    return out

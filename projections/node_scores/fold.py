"""The node-scores view: each node's registration, last observation, liveness and learned scores.

``evolve_node_scores`` is the pure fold; like readiness, it replaces frozen entries and notes
their KV keys in ``touched``. Keys: ``node.<id>`` (`NodeView`) and ``type.<task type>``
(`TypeEstimate`; a type that is not a safe key token is keyed by a hash, the value names it).

Liveness: the view holds its inputs (``last_seen``, ``observe_interval_s``, ``subject_seq``)
and the facts the watchdog appended (``lost``); whether a node is late depends on ``now``, which
only the watchdog and the decider read. ``NodeLost`` marks a node lost; its next registration or
observation (a new lease) marks it alive again. ``NodeDrainRequested`` (or an observation that
says ``draining``) marks it draining until it registers again.

Learning (per node × task type, exponentially decayed with the half-life ``half_life_s``,
default 30 minutes, over event time; see `projections.decay`):

- efficiency = expected / actual duration of a successful run, clamped to [0.01, 100]; the
  expected duration is the completion's, else the dispatch's, else the task's estimate, else the
  type's learned mean so far (no sample when none is known);
- success rate: 1 for success, 0.5 for partial, 0 for failure and for a lost attempt;
- per task type: the decayed mean and spread of successful run durations;
- per node: the bytes and seconds its agent fetched from the artifact store before a run
  (``fetched_bytes``/``fetch_seconds`` of a completion), decayed together, so their ratio is
  the node's recent transfer rate (`orchestrator.decision.transfer`).

Preflight runs and results from attempts that do not hold the task teach nothing. The entries
themselves are `projections.node_scores.entries`.

Feedback (`projections.feedback`, `projections.node_scores.patterns`): a completion is folded with the
outcome the quality threshold judges (``quality`` below it makes a success ``partial``); each
node × type keeps its failure streak (``TypeScore.streak``) and each command × error signature
its own (``pattern.<hash>`` keys, `PatternView`). Whether a streak is flagged depends on ``now``
(its cool-down), so the decider judges it, like liveness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.graphs.submission import GraphAssembly
from projections.decay import DEFAULT_HALF_LIFE_S, add, add_pair
from projections.feedback import QualityGate, counts_as_failure, judged_event, streak_after
from projections.fold import rule_for
from projections.node_scores.entries import Holder as Holder
from projections.node_scores.entries import NodeView as NodeView
from projections.node_scores.entries import TypeEstimate as TypeEstimate
from projections.node_scores.entries import TypeScore as TypeScore
from projections.node_scores.patterns import PATTERN_PREFIX, PatternView, learn_command
from schemas import actions as act
from schemas import events as ev
from schemas.ids import token
from schemas.subjects import is_safe_id, node_key

UNTYPED = "untyped"
SUCCESS_VALUE = {"success": 1.0, "partial": 0.5, "failure": 0.0}
EFFICIENCY_BOUNDS = (0.01, 100.0)


@dataclass
class NodeScoresView:
    """All nodes and type estimates; ``seq`` is the last stream sequence applied.

    ``specs`` (type and estimate of each task) and ``holders`` are fold state, not KV values.
    """

    half_life_s: float = DEFAULT_HALF_LIFE_S
    nodes: dict[str, NodeView] = field(default_factory=dict)
    types: dict[str, TypeEstimate] = field(default_factory=dict)
    specs: dict[tuple[str, str], tuple[str, float | None]] = field(default_factory=dict)
    holders: dict[tuple[str, str], Holder] = field(default_factory=dict)
    seq: int = 0
    touched: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)
    assembly: GraphAssembly = field(default_factory=GraphAssembly)
    patterns: dict[str, PatternView] = field(default_factory=dict)  # command × error signature
    by_command: dict[str, list[str]] = field(default_factory=dict)  # command → its pattern keys
    quality: QualityGate = field(default_factory=QualityGate)
    timed_out: dict[tuple[str, str], float] = field(default_factory=dict)  # task -> how long its timed-out run ran


def attempt_key(graph_id: str, task_id: str, attempt: int) -> str:
    """Identity of one task attempt held by a node: ``<graph token>/<task token>#<attempt>``."""
    return f"{token(graph_id)}/{token(task_id)}#{attempt}"


_TYPE_KEYS: dict[str, str] = {}  # type_key's answers (a pure function; bounded)


def type_key(task_type: str) -> str:
    """KV key of a task type's estimate."""
    key = _TYPE_KEYS.get(task_type)
    if key is None:
        token = task_type if is_safe_id(task_type) else "h-" + hashlib.sha256(task_type.encode()).hexdigest()[:24]
        key = f"type.{token}"
        if len(_TYPE_KEYS) < 10_000:
            _TYPE_KEYS[task_type] = key
    return key


def _put(view: NodeScoresView, node: NodeView) -> None:
    view.nodes[node.node_id] = node
    view.touched.add(node_key(node.node_id))


def _node(view: NodeScoresView, node_id: str) -> NodeView:
    return view.nodes.get(node_id) or NodeView(node_id=node_id)


def _node_event(view: NodeScoresView, e: ev.AnyEvent, seq: int) -> None:
    replace = msgspec.structs.replace
    match e:
        case ev.NodeRegistered():
            n = replace(
                _node(view, e.node_id),
                slots=e.slots,
                labels=e.labels,
                hostname=e.hostname,
                cpu_count=e.cpu_count,
                memory_bytes=e.memory_bytes,
                observe_interval_s=e.observe_interval_s,
                registered_at=e.occurred_at,
                last_seen=e.occurred_at,
                lost=False,
                draining=False,
                drain_reason="",
            )
        case ev.NodeObserved():
            _observed(view, e, seq)
            return
        case ev.NodeLost():
            n = _node(view, e.node_id)
            n = replace(n, lost=True, lost_at=e.occurred_at, lost_reason=e.reason, lost_count=n.lost_count + 1)
        case ev.NodeDrainRequested():
            n = replace(_node(view, e.node_id), draining=True, drain_reason=f"by {e.by}: {e.reason}".rstrip(": "))
        case act.NodeScaleDownProposed():
            n = replace(_node(view, e.node_id), scale_down_for=e.idle_since)
        case _:
            raise TypeError(f"node-scores: not a node event: {type(e).__name__}")
    _put(view, replace(n, seq=seq, subject_seq=seq))


def _observed(view: NodeScoresView, e: ev.NodeObserved, seq: int) -> None:
    n = _node(view, e.node_id)
    n = msgspec.structs.replace(
        n,
        last_seen=e.occurred_at,
        cpu_percent=e.cpu_percent,
        memory_percent=e.memory_percent,
        load1=e.load1,
        running_tasks=e.running_tasks,
        observations=n.observations + 1,
        lost=False,
        draining=n.draining or e.draining,
        drain_reason=n.drain_reason or ("reported by the agent" if e.draining else ""),
        seq=seq,
        subject_seq=seq,
    )
    _put(view, n)


def _expected(view: NodeScoresView, e: ev.TaskCompleted, h: Holder, task_type: str) -> float | None:
    """The base (speed 1) duration an efficiency is measured against: the task's estimate, else
    its type's learned mean. Never the dispatch's prediction, which the decider already divided
    by the node's efficiency (measuring against it would learn the error of the last guess)."""
    spec = view.specs.get((e.graph_id, e.task_id))
    if spec is not None and spec[1]:
        return spec[1]
    known = view.types.get(type_key(task_type))
    return known.duration.mean if known is not None else None


_NO_SCORE = TypeScore()
_NO_SPEC: tuple[str, float | None] = ("", None)


def _learned_scores(
    view: NodeScoresView, scores: dict[str, TypeScore], e: ev.TaskCompleted | ev.TaskLost, h: Holder, seq: int
) -> dict[str, TypeScore]:
    """A node's scores with one more outcome for the task's type; type estimates for a success."""
    hl = view.half_life_s
    spec = view.specs.get((e.graph_id, e.task_id), _NO_SPEC)
    task_type = spec[0] or UNTYPED
    score = scores.get(task_type, _NO_SCORE)
    efficiency, streak = score.efficiency, score.streak
    if not isinstance(e, ev.TaskCompleted):  # a lost attempt: a failure to learn, nothing more
        success = add(score.success, 0.0, e.occurred_at, hl)
        return {**scores, task_type: TypeScore(efficiency=efficiency, success=success, streak=streak)}
    at, outcome = e.occurred_at, e.outcome
    if outcome != "failure" or counts_as_failure(e):
        failed = outcome == "failure"
        if failed or streak.failures:
            streak = streak_after(streak, failed, at, e.error)
    if outcome == "failure":
        if e.error.startswith("timed out"):
            view.timed_out[(e.graph_id, e.task_id)] = e.duration_s
        success = add(score.success, 0.0, at, hl)
        return {**scores, task_type: TypeScore(efficiency=efficiency, success=success, streak=streak)}
    key = type_key(task_type)
    est = view.types.get(key)
    # the estimate: the task's own, else its type's learned mean so far (`_expected`)
    expected = spec[1] or (est.duration.mean if est is not None else None)
    if expected:
        lo, hi = EFFICIENCY_BOUNDS
        eff = min(max(expected / max(e.duration_s, 1e-3), lo), hi)
        success, efficiency = add_pair(score.success, SUCCESS_VALUE[outcome], efficiency, eff, at, hl)
    else:
        success = add(score.success, SUCCESS_VALUE[outcome], at, hl)
    if est is None:
        est = TypeEstimate(type=task_type)
    view.types[key] = _proven(
        view, e, msgspec.structs.replace(est, duration=add(est.duration, e.duration_s, at, hl), seq=seq)
    )
    view.touched.add(key)
    return {**scores, task_type: TypeScore(efficiency=efficiency, success=success, streak=streak)}


def _proven(view: NodeScoresView, e: ev.TaskCompleted, est: TypeEstimate) -> TypeEstimate:
    """A success of a task whose earlier run timed out, taking longer than that run: the timeout was too short."""
    ran = view.timed_out.pop((e.graph_id, e.task_id), None) if view.timed_out else None
    if ran is None or e.duration_s <= ran:
        return est
    return msgspec.structs.replace(est, proven_s=max(est.proven_s, e.duration_s), short_timeouts=est.short_timeouts + 1)


def _release(view: NodeScoresView, e: ev.TaskCompleted | ev.TaskLost, seq: int) -> None:
    """An attempt ended on its node: free the slot, count and learn (if it held the task)."""
    node_id = e.node_id
    n = view.nodes.get(node_id) or NodeView(node_id=node_id)
    key = attempt_key(e.graph_id, e.task_id, e.attempt)
    task = (e.graph_id, e.task_id)
    h = view.holders.get(task)
    holds = h is not None and h.node_id == node_id and h.attempt == e.attempt
    completed = isinstance(e, ev.TaskCompleted)
    run = completed and e.phase == "run"  # type: ignore[union-attr]
    scores = n.scores
    if holds and h is not None and (run or not completed):
        del view.holders[task]
        scores = _learned_scores(view, scores, e, h, seq)
        if completed and h.command:
            view.touched.update(learn_command(view.patterns, view.by_command, e, h.command, seq))  # type: ignore[arg-type]
    elif not holds:
        view.ignored.append(f"seq {seq}: {type(e).__name__} from {key} on {node_id}, which does not hold it")
    active = n.active
    if key in active:  # the same tuple without ``key`` (each attempt is in it once)
        i = active.index(key)
        active = active[:i] + active[i + 1 :]
        if not active:
            n = msgspec.structs.replace(n, idle_since=e.occurred_at)
    if run:
        ok = e.outcome != "failure"  # type: ignore[union-attr]
        n = msgspec.structs.replace(
            n,
            active=active,
            seq=seq,
            completed=n.completed + ok,
            failed=n.failed + (not ok),
            last_seen=e.occurred_at,
            scores=scores,
        )
    else:
        n = msgspec.structs.replace(n, active=active, seq=seq, scores=scores)
    if holds and completed:
        n = _learned_fetch(view, n, e)  # type: ignore[arg-type]
    view.nodes[node_id] = n
    view.touched.add(node_key(node_id))


def _learned_fetch(view: NodeScoresView, n: NodeView, e: ev.TaskCompleted) -> NodeView:
    """The node with the fetch its agent reported before the run (bytes and seconds, decayed
    together: their ratio is the node's transfer rate); unchanged when it fetched nothing."""
    if e.fetched_bytes <= 0 or not e.fetch_seconds > 0:
        return n
    got, took = add_pair(
        n.fetched_bytes, float(e.fetched_bytes), n.fetch_seconds, e.fetch_seconds, e.occurred_at, view.half_life_s
    )
    return msgspec.structs.replace(n, fetched_bytes=got, fetch_seconds=took)


def _dispatch(view: NodeScoresView, e: ev.TaskDispatched, seq: int) -> None:
    n = _node(view, e.node_id)
    key = attempt_key(e.graph_id, e.task_id, e.attempt)
    active = n.active  # sorted and each attempt once: add ``key`` in its place
    if not active:
        active = (key,)
    elif key not in active:
        active = (*active, key) if key > active[-1] else tuple(sorted((*active, key)))
    _put(view, msgspec.structs.replace(n, active=active, seq=seq, idle_since=None))
    view.holders[(e.graph_id, e.task_id)] = Holder(e.node_id, e.attempt, e.expected_duration_s, e.command)


def _drop(view: NodeScoresView, graph_id: str, task_id: str | None, seq: int, at: datetime) -> None:
    """A cancel frees the slots of the attempts it ends (their agents kill them)."""
    prefix = f"{token(graph_id)}/{token(task_id)}#" if task_id is not None else f"{token(graph_id)}/"
    for node_id in sorted(view.nodes):
        n = view.nodes[node_id]
        keep = tuple(a for a in n.active if not a.startswith(prefix))
        if keep != n.active:
            idle = {"idle_since": at} if not keep else {}
            _put(view, msgspec.structs.replace(n, active=keep, seq=seq, **idle))
    for k in [k for k in view.holders if k[0] == graph_id and (task_id is None or k[1] == task_id)]:
        del view.holders[k]


def _graph(view: NodeScoresView, e: ev.GraphSubmitted | ev.GraphTasksAdded) -> None:
    whole = view.assembly.add(e)
    if whole is not None:
        for t in whole.tasks:
            view.specs.setdefault((whole.graph_id, t.id), (t.type, t.estimate_s))


def _completed(view: NodeScoresView, e: ev.TaskCompleted, seq: int) -> None:
    view.quality, judged = judged_event(view.quality, e)  # the quality threshold's verdict
    _release(view, judged, seq)


def _task_cancelled(view: NodeScoresView, e: ev.TaskCancelled | ev.TaskRejected, seq: int) -> None:
    _drop(view, e.graph_id, e.task_id, seq, e.occurred_at)


def _graph_cancelled(view: NodeScoresView, e: ev.GraphCancelled, seq: int) -> None:
    _drop(view, e.graph_id, None, seq, e.occurred_at)


def _graph_part(view: NodeScoresView, e: ev.GraphSubmitted | ev.GraphTasksAdded, seq: int) -> None:
    _graph(view, e)


def _generated(view: NodeScoresView, e: ev.TasksGenerated, seq: int) -> None:
    for x in e.generated:
        view.specs.setdefault((e.graph_id, x.spec.id), (x.spec.type, x.spec.estimate_s))


def _nothing(view: NodeScoresView, e: ev.AnyEvent, seq: int) -> None:
    pass


# What each event type does to the view, looked up by the exact type (one dict lookup instead
# of a chain of class patterns; a subclass finds its base's rule through `rule_for`).
_RULES: dict[type, Callable[[NodeScoresView, Any, int], None]] = {
    ev.NodeObserved: _observed,
    ev.NodeRegistered: _node_event,
    ev.NodeLost: _node_event,
    ev.NodeDrainRequested: _node_event,
    ev.TaskDispatched: _dispatch,
    ev.TaskCompleted: _completed,
    ev.TaskLost: _release,
    ev.TaskCancelled: _task_cancelled,
    ev.TaskRejected: _task_cancelled,
    ev.GraphCancelled: _graph_cancelled,
    ev.GraphSubmitted: _graph_part,
    ev.GraphTasksAdded: _graph_part,
    ev.TasksGenerated: _generated,
    ev.TaskStarted: _nothing,
    ev.TaskApproved: _nothing,
    ev.PredictionExpired: _nothing,
    ev.AutonomyChanged: _nothing,
    ev.Unschedulable: _nothing,
    act.Alert: _nothing,
    ev.GenerationLimitReached: _nothing,
    ev.BacklogItemTaken: _nothing,
    ev.TaskCacheHit: _nothing,  # no node ran anything: nothing to learn about nodes or predictions
    ev.CacheEntryRevoked: _nothing,
    act.GraphPaused: _nothing,
    act.GraphResumed: _nothing,
    act.CarefulModeEntered: _nothing,
    act.CarefulModeLeft: _nothing,
    act.NodeScaleDownProposed: _node_event,
    act.NodeScaleUpProposed: _nothing,
}


def evolve_node_scores(view: NodeScoresView, event: ev.AnyEvent, seq: int) -> NodeScoresView:
    """Apply one event (at stream sequence ``seq``) to the node-scores view."""
    if seq <= view.seq:
        return view
    rule = _RULES.get(type(event)) or rule_for(_RULES, event, "node-scores")
    rule(view, event, seq)
    view.seq = seq
    return view


def node_values(view: NodeScoresView, keys: set[str]) -> dict[str, msgspec.Struct]:
    """The current value of each KV key in ``keys``."""
    out: dict[str, msgspec.Struct] = {}
    for k in keys:
        kind, _, rest = k.partition(".")
        if kind == "node":
            out[k] = view.nodes[rest]
        else:
            out[k] = view.patterns[k] if kind == PATTERN_PREFIX else view.types[k]
    return out


def node_keys(view: NodeScoresView) -> set[str]:
    """Every KV key the view holds (for a rebuild)."""
    return {node_key(n) for n in view.nodes} | set(view.types) | set(view.patterns)

"""The decision core: ``decide(views, now, config) -> decisions``, pure and deterministic.

Ready tasks are taken in priority order (`orchestrator.decision.scoring`), lazily, from the ready set
the decider and replay keep task by task (`orchestrator.decision.readyset`; computed from the views when
there is none), so a round costs the tasks it looks at, not every ready one; for each, every node is a
candidate with a score and the reason in words (not alive, lost, draining, missing a label,
no free slot, or its expected finish and value). The policy picks one eligible node, or (eft)
reserves a busy node that would still finish first and leaves the task for the next decision.
Tier-2 tasks get their preflight dispatched first; tier-3 tasks wait for an approval; the
autonomy level narrows what may run (cautious: tier 1 only, one task per node, shortest
first; supervised: only approved work); careful mode (`orchestrator.decision.careful`, entered
when confidence falls) takes the ready tasks shortest estimate first as well. Flagged patterns
(`orchestrator.decision.flags`) make a node avoided for a task type, or escalate a task to
approval when they cannot be avoided. Same
views + ``now`` + config give the same decisions byte for byte: no clock, no randomness, and
every iteration is over sorted keys. Before any node is looked at, a ready cacheable task whose
action key has a usable cache entry becomes a cache hit (`orchestrator.decision.cachehit`): a
decision like a dispatch that needs no node, appended as a `TaskCacheHit`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.decision.availability import node_down, unavailable
from orchestrator.decision.cachehit import cache_hits
from orchestrator.decision.candidates import choose
from orchestrator.decision.careful import NOTE as CAREFUL_NOTE
from orchestrator.decision.careful import CarefulConfig, careful_actions, careful_now
from orchestrator.decision.dispatch import dispatch_event
from orchestrator.decision.flags import FlagIndex, approve_hint, escalation_reason, flag_index
from orchestrator.decision.pause import Action, PauseConfig, Paused, Stamp, pause_actions
from orchestrator.decision.readyset import ReadySet, digest_of, ranked
from orchestrator.decision.scaling import ScaleAction, ScalingConfig, scale_down_actions, scale_up_actions
from orchestrator.decision.scoring import ScoringConfig, backoff_until, task_estimate
from orchestrator.decision.slots import RoundMemo, RoundSlots
from orchestrator.decision.timeouts import TimeoutConfig
from projections.confidence.entries import Careful
from projections.node_scores.fold import NodeView, TypeEstimate
from projections.node_scores.patterns import PatternView
from projections.readiness.entries import GraphView, Health
from projections.readiness.fold import TaskView
from schemas.actions import GraphPaused, GraphResumed
from schemas.events import TaskCacheHit, TaskDispatched
from schemas.records import Candidate

__all__ = ["DECIDER_VERSION", "DeciderConfig", "Dispatch", "Views", "decide", "decide_round", "escalated", "gate"]
__all__ += ["plan"]
__all__ += ["node_down", "unavailable", "world_hash"]

DECIDER_VERSION = "0.2.0"  # what `decide` computes, recorded in every decision: 0.2.0 hashes the ready
# set by its digest (`orchestrator.decision.readyset`), so a 0.1.0 decision's world hash is not reproduced


@dataclass(frozen=True)
class DeciderConfig:
    """Knobs of the decision core."""

    node_ttl_s: float = 20.0
    decider_id: str = "decider"
    version: str = DECIDER_VERSION
    max_dispatches: int = 1000
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    unschedulable_after_s: float = 300.0
    pause: PauseConfig = field(default_factory=PauseConfig)  # pause on error rate (`orchestrator.decision.pause`)
    timeouts: TimeoutConfig = field(
        default_factory=TimeoutConfig
    )  # learned timeouts (`orchestrator.decision.timeouts`)
    careful: CarefulConfig = field(default_factory=CarefulConfig)  # careful mode (`orchestrator.decision.careful`)
    scaling: ScalingConfig = field(
        default_factory=ScalingConfig
    )  # scale idle nodes down (`orchestrator.decision.scaling`)

    @property
    def policy(self) -> str:
        """Name of the scoring policy."""
        return self.scoring.policy


@dataclass(frozen=True)
class Views:
    """The read models a decision is computed from, and the stream sequences they reflect."""

    tasks: Mapping[tuple[str, str], TaskView]
    nodes: Mapping[str, NodeView]
    seqs: Mapping[str, int] = field(default_factory=dict)
    types: Mapping[str, TypeEstimate] = field(default_factory=dict)
    confidence: float = 1.0
    autonomy: str = "full"
    ready: Collection[tuple[str, str]] | None = None  # index of the ready tasks' keys, if the caller keeps one
    patterns: Mapping[str, PatternView] = field(default_factory=dict)  # command × error signature streaks
    quality_threshold: float | None = None  # shown by the operator views; decide does not use it
    ready_set: ReadySet | None = None  # the ready tasks' order and digest, if the caller keeps them (else computed)
    memo: RoundMemo | None = None  # what rounds may share, if the caller keeps one across rounds (`RoundMemo`)
    cache: Mapping[str, Any] = field(default_factory=dict)  # the readiness view's cache entries, by KV key
    graphs: Mapping[str, GraphView] = field(default_factory=dict)  # the readiness view's graphs (failure rates, pauses)
    health: Health | None = None  # every graph's failure rate and pause
    careful: Careful | None = None  # careful mode, while it lasts (the confidence view's)
    careful_seq: int = 0  # the last careful-mode event's sequence (the guard of the next)

    def ready_tasks(self) -> list[TaskView]:
        """Every task in state ready, in key order (from the index when given)."""
        if self.ready is not None:
            return [self.tasks[k] for k in sorted(self.ready)]
        return sorted((t for t in self.tasks.values() if t.state == "ready"), key=lambda t: (t.graph_id, t.task_id))


class Dispatch(msgspec.Struct, frozen=True, kw_only=True):
    """A decision to append: the event (a dispatch, or a cache hit), and the guard that makes a stale one fail."""

    event: TaskDispatched | TaskCacheHit
    expected_seq: int
    version: int
    needs: tuple[tuple[str, str], ...] = ()  # the round's cache hits (graph, task) to be appended first


def world_hash(views: Views, now: datetime) -> str:
    """Hash of exactly the inputs a decision used: the ready set's digest (`orchestrator.decision.readyset`:
    each ready task's graph, task and seq), nodes, their seqs, autonomy, confidence, ``now``."""
    nodes = sorted([(n.node_id, n.seq, n.active) for n in views.nodes.values()])
    blob = _encode(
        [digest_of(views), nodes, sorted(views.seqs.items()), views.autonomy, views.confidence, now.isoformat()]
    )
    return hashlib.sha256(blob).hexdigest()[:16]


_encode = msgspec.json.Encoder().encode  # (what msgspec.json.encode does, without its per-call set-up)


OVERDUE_S = 1e-3  # expected remaining time of a run that is past its expected finish


def _busy_until(views: Views, node: NodeView, now: datetime, cfg: ScoringConfig, slots: RoundSlots) -> list[float]:
    """Seconds until each active run of the node is expected to end (at least `OVERDUE_S`)."""
    out: list[float] = []
    tasks, runs = views.tasks, slots.runs
    task_type: str | None = None  # the type whose efficiency ``eff`` is (runs on a node mostly share one)
    eff = 1.0
    for key in node.active:
        task = tasks.get(runs.get(key) or slots.run_task(key))
        if task is None:
            out.append(cfg.default_estimate_s)
            continue
        est = task.estimate_s
        if est is None:
            est = task_estimate(task, views.types, cfg)[0]
        if task.type != task_type or task_type is None:
            task_type = task.type
            eff = slots.node_facts(node, task_type, cfg).eff  # (the round's facts: the tasks' rows reuse them)
        begun = (now - task.started_at).total_seconds() if task.started_at else 0.0
        out.append(max(est / eff - begun, OVERDUE_S))  # an overdue run still holds its slot
    return out


def _slot_count(node: NodeView, one_per_node: bool) -> int:
    return 1 if one_per_node else node.slots


def _slots(views: Views, now: datetime, config: DeciderConfig, one_per_node: bool) -> RoundSlots:
    slots = RoundSlots({}, {})
    if views.memo is not None:
        slots.share(views.memo, config.scoring)
    nodes, free_at, down, ttl = views.nodes, slots.free_at, slots.down, config.node_ttl_s
    for nid in sorted(nodes):
        node = nodes[nid]
        seen = node.last_seen
        if node.lost or node.draining or seen is None or not (now - seen).total_seconds() <= ttl:
            down[nid] = node_down(node, now, ttl)
        else:  # (what node_down says of a live node, without its words' work)
            down[nid] = None
        n = 1 if one_per_node else node.slots
        if not node.active:
            free_at[nid] = [0.0] * n if n > 0 else []
            continue
        busy = sorted(_busy_until(views, node, now, config.scoring, slots))
        free = max(n - len(busy), 0)
        free_at[nid] = [0.0] * free + busy[: max(n - free, 0)] if n > 0 else []
    slots.reopen()
    return slots


def _flag_index(views: Views, now: datetime, cfg: ScoringConfig, slots: RoundSlots) -> FlagIndex:
    """`flag_index`, or at once the empty index when no node's task type and no pattern has as
    many failures in a row as a flag needs (whether a node's has is kept with its scores)."""
    bound = cfg.flag_after
    if any(slots.streaky(node, bound) for node in views.nodes.values()) or any(
        p.streak.failures >= bound for p in views.patterns.values()
    ):
        return flag_index(views.nodes, views.patterns, now, cfg)
    return FlagIndex()


def gate(task: TaskView, autonomy: str, now: datetime | None = None, cfg: ScoringConfig | None = None) -> str | None:
    """Why a ready task may not run now whatever the nodes (tier, approval, autonomy, backoff), or None."""
    if now is not None and cfg is not None:
        until = backoff_until(task, cfg)
        if until is not None and now < until:
            return f"in backoff until {until.strftime('%H:%M:%S')} after attempt {task.attempt} ({task.failure_kind})"
    if task.tier == 3 and task.approved_by is None:
        return "awaiting approval"
    if autonomy == "supervised" and task.approved_by is None:
        return "autonomy supervised: nothing runs without an approval"
    if autonomy == "cautious" and task.tier > 1:
        return f"autonomy cautious and the task is tier {task.tier}"
    return None


def decide(views: Views, now: datetime, config: DeciderConfig) -> list[Dispatch]:
    """Dispatch decisions for the ready tasks that a live, matching node has room for."""
    return plan(views, now, config)[0]


def decide_round(
    views: Views, now: datetime, config: DeciderConfig
) -> tuple[list[Action | ScaleAction], list[Dispatch]]:
    """A whole round: the actions besides dispatch (pauses and resumes, first: they hold for the
    round's own dispatches; then scaling proposals, which see them), then the dispatches."""
    actions = round_actions(views, now, config)
    dispatches = plan(views, now, config, actions)[0]
    return [*actions, *scale_actions(views, now, config, dispatches, actions)], dispatches


def scale_actions(
    views: Views,
    now: datetime,
    config: DeciderConfig,
    dispatches: list[Dispatch] | None = None,
    actions: list[Action] | None = None,
) -> list[ScaleAction]:
    """The round's scale-down and scale-up proposals (`orchestrator.decision.scaling`; none unless
    enabled); ``dispatches``: the round's own, ``actions``: its pauses (a paused task is not queued)."""
    if not config.scaling.enabled:
        return []
    stamp, ready, sc, ttl = stamp_of(views, config), views.ready_tasks(), config.scaling, config.node_ttl_s
    out = scale_down_actions(views.nodes, ready, now, ttl, sc, stamp, views.autonomy) if views.nodes else []
    paused = paused_of(views, now, config, actions)
    taken = {(d.event.graph_id, d.event.task_id): getattr(d.event, "node_id", "") for d in dispatches or ()}

    def held(t: TaskView) -> bool:
        return gate(t, views.autonomy, now, config.scoring) is not None or bool(paused and paused.reason(t.graph_id))

    up = scale_up_actions(views.nodes, ready, now, ttl, sc, stamp, health=views.health, taken=taken, held=held,
                          autonomy=views.autonomy)  # fmt: skip
    return out + up


def stamp_of(views: Views, config: DeciderConfig) -> Stamp:
    """What a round's decisions record about their inputs and their maker."""
    return Stamp(
        view_seqs=dict(sorted(views.seqs.items())),
        decider_id=config.decider_id,
        decider_version=config.version,
        policy=config.policy,
    )


def round_actions(views: Views, now: datetime, config: DeciderConfig) -> list[Action]:
    """The round's pauses and resumes (`orchestrator.decision.pause`), then its careful-mode
    action (`orchestrator.decision.careful`)."""
    out: list[Action] = []
    if views.graphs or views.health is not None:
        out = pause_actions(views.graphs, views.health, now, config.pause, stamp_of(views, config))
    if views.careful is not None or (config.careful.enabled and views.confidence < config.careful.enter_below):
        stamp = stamp_of(views, config)
        out += careful_actions(views.confidence, views.careful, views.careful_seq, now, config.careful, stamp)
    return out


def paused_of(views: Views, now: datetime, config: DeciderConfig, actions: list[Action] | None = None) -> Paused | None:
    """The pauses a round's dispatches obey (None: nothing is paused)."""
    if actions is None:
        actions = round_actions(views, now, config)
    health = views.health
    actions = [a for a in actions if isinstance(a.event, GraphPaused | GraphResumed)]
    if not actions and (health is None or health.pause is None) and not any(g.pause for g in views.graphs.values()):
        return None
    return Paused(views.graphs, health, actions, now, config.pause)


def plan(
    views: Views, now: datetime, config: DeciderConfig, actions: list[Action] | None = None
) -> tuple[list[Dispatch], dict[tuple[str, str], tuple[str, float]]]:
    """The dispatches, and the reservations: tasks left waiting for a busy node that finishes them
    first (task → node and seconds until its slot is expected free); ``actions``: the round's
    pauses and resumes (computed here when not given)."""
    hits = [
        Dispatch(event=h.event, expected_seq=h.task.last_seq, version=h.task.version + 1, needs=h.needs)
        for h in cache_hits(views, now, config)
    ]
    if actions is None:
        actions = round_actions(views, now, config)
    paused = paused_of(views, now, config, actions)
    careful = careful_now(views.careful, actions)
    hit = {(d.event.graph_id, d.event.task_id) for d in hits}
    dispatches, reserved = _plan(views, now, config, hit, paused, careful)
    return hits + dispatches, reserved


def _plan(
    views: Views,
    now: datetime,
    config: DeciderConfig,
    hit: set[tuple[str, str]],
    paused: Paused | None = None,
    careful: bool = False,
) -> tuple[list[Dispatch], dict[tuple[str, str], tuple[str, float]]]:
    """`plan`'s dispatches and reservations, for the ready tasks not in ``hit`` (``careful``:
    shortest estimate first, as under cautious autonomy)."""
    cfg = config.scoring
    reserved: dict[tuple[str, str], tuple[str, float]] = {}
    if not views.nodes:
        return [], reserved
    cautious = views.autonomy == "cautious"
    if cfg.default_estimate_s > 0 and all(len(n.active) >= _slot_count(n, cautious) for n in views.nodes.values()):
        return [], reserved  # every slot is held by an active run (none expected free now): nothing can start
    slots = _slots(views, now, config, one_per_node=cautious)
    if not _any_free(slots):  # nothing can start: no need to look at the ready tasks at all
        return [], reserved
    flags = _flag_index(views, now, cfg, slots)
    slots.flags = flags
    node_order = sorted(views.nodes)
    digest: str | None = None
    out: list[Dispatch] = []
    for task in ranked(views, now, cfg, shortest_first=cautious or careful):
        if len(out) >= config.max_dispatches or not _any_free(slots):
            break
        if hit and (task.graph_id, task.task_id) in hit:
            continue
        if gate(task, views.autonomy, now, cfg) is not None:
            continue
        if paused and paused.reason(task.graph_id) is not None:
            continue  # its graph (or every graph) is paused on its failure rate
        if flags and escalated(task, views, now, config, flags) is not None:
            continue  # escalated tasks wait for a person's approval
        choice = choose(task, views, now, config, slots, node_order)
        if choice is None:
            continue
        best, candidates, start, duration = choice
        slots.take(best.node_id, start + duration)
        if best.eligible:
            digest = digest or world_hash(views, now)
            d = _dispatch(task, best, candidates, duration, views, now, config, digest)
            d = _approved_past_flags(d, task, views, now, config, flags) if flags else d
            d = _noted(d, CAREFUL_NOTE) if careful else d
            out.append(_probe(d, paused) if paused and paused.take(task.graph_id) else d)
        else:  # the node is reserved: it frees up first and the task waits for it
            reserved[(task.graph_id, task.task_id)] = (best.node_id, start)
    return out, reserved


def _any_free(slots: RoundSlots) -> bool:
    return bool(slots.open)


def _usable(task: TaskView, views: Views, now: datetime, config: DeciderConfig) -> list[str]:
    """Nodes that could take the task at all (alive, labels matching), busy or not."""
    return [nid for nid in sorted(views.nodes) if unavailable(task, views.nodes[nid], now, config.node_ttl_s) is None]


def escalated(task: TaskView, views: Views, now: datetime, config: DeciderConfig, flags: FlagIndex) -> str | None:
    """Why a task waits for a person's approval because of flagged patterns, or None (also once approved)."""
    if task.approved_by is not None or not flags:
        return None
    why = escalation_reason(task, _usable(task, views, now, config), flags)
    return f"escalated to approval: {why}; {approve_hint(task)}" if why is not None else None


def _approved_past_flags(
    d: Dispatch, task: TaskView, views: Views, now: datetime, config: DeciderConfig, flags: FlagIndex
) -> Dispatch:
    """A dispatch of an approved task that flagged patterns had escalated says so in its strategy."""
    if task.approved_by is None:
        return d
    why = escalation_reason(task, _usable(task, views, now, config), flags)
    if why is None:
        return d
    note = f"escalated ({why}) and approved by {task.approved_by}"
    assert isinstance(d.event, TaskDispatched)  # (a cache hit is never escalated)
    strategy = f"{d.event.strategy}; {note}" if d.event.strategy else note
    return msgspec.structs.replace(d, event=msgspec.structs.replace(d.event, strategy=strategy))


def _probe(d: Dispatch, paused: Paused) -> Dispatch:
    """A dispatch of a paused graph's task says it is a probe, in its strategy."""
    return _noted(d, "probe of a paused graph (its outcome moves the failure rate)")


def _noted(d: Dispatch, note: str) -> Dispatch:
    """The dispatch with ``note`` added to its strategy."""
    assert isinstance(d.event, TaskDispatched)
    strategy = f"{d.event.strategy}; {note}" if d.event.strategy else note
    return msgspec.structs.replace(d, event=msgspec.structs.replace(d.event, strategy=strategy))


def _dispatch(
    task: TaskView,
    best: Candidate,
    candidates: tuple[Candidate, ...],
    duration: float,
    views: Views,
    now: datetime,
    config: DeciderConfig,
    digest: str,
) -> Dispatch:
    event = dispatch_event(task, best, candidates, duration, views, now, config, digest)
    return Dispatch(event=event, expected_seq=task.last_seq, version=task.version + 1)

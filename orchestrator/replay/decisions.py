"""Recorded decisions re-run and compared over one range of the log (`check_range`).

At each recorded `TaskDispatched`, `TaskCacheHit`, `GraphPaused`, `GraphResumed`,
`NodeScaleDownProposed` or `NodeScaleUpProposed` the pure
`decide` runs again with the views at exactly the sequences the decision names (``view_seqs``),
its ``now`` and its policy; generated work (tasks generated, the limit, a backlog graph taken) is
re-derived the same way (`check_generation`). A decision is *reproduced* when the bytes are
identical; otherwise the report names each field that differs, recorded against replayed.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from typing import Any

import msgspec

from orchestrator.decision.decide import DeciderConfig, decide_round
from orchestrator.replay.replayer import FREEZE_EVERY, Replayer, Stored
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas.errors import MalformedEvent

Recorded = (
    ev.TaskDispatched
    | ev.TaskCacheHit
    | act.GraphPaused
    | act.GraphResumed
    | act.CarefulModeEntered
    | act.CarefulModeLeft
    | act.NodeScaleDownProposed
    | act.NodeScaleUpProposed
)
# decisions besides dispatches (whose node follows the name); a person's pause or resume is not one (``by``)
DECISION_SUBJECT_ENDS = (
    ".TaskCacheHit",
    ".GraphPaused",
    ".GraphResumed",
    ".CarefulModeEntered",
    ".CarefulModeLeft",
    ".NodeScaleDownProposed",
    ".NodeScaleUpProposed",
)


def is_decision_subject(subject: str) -> bool:
    """The message is a dispatch or a cache hit (by its subject alone: no decode)."""
    return ".TaskDispatched." in subject or subject.endswith(DECISION_SUBJECT_ENDS)


def _said(e: Recorded) -> str:
    if isinstance(e, ev.TaskDispatched):
        return f"{e.phase} to {e.node_id}"
    if isinstance(e, ev.TaskCacheHit):
        return f"cache hit of {e.key[:12]}"
    return type(e).__name__


def decision_key(e: Recorded) -> tuple[str, str]:
    """What a round decides once: a task (dispatch, cache hit), a pause scope (pause, resume), or
    careful mode (enter, leave)."""
    if isinstance(e, act.GraphPaused | act.GraphResumed):
        return ("pause", e.graph_id)
    if isinstance(e, act.CarefulModeEntered | act.CarefulModeLeft):
        return ("careful", "")
    if isinstance(e, act.NodeScaleDownProposed):
        return ("scale-down", e.node_id)
    if isinstance(e, act.NodeScaleUpProposed):
        return ("scale-up", "")
    return (e.graph_id, e.task_id)


def _diff(recorded: Recorded, replayed: Recorded | None) -> list[dict[str, Any]]:
    if replayed is None or type(replayed) is not type(recorded):
        return [{"field": "decision", "recorded": _said(recorded), "replayed": _said(replayed) if replayed else "none"}]
    a, b = msgspec.to_builtins(recorded), msgspec.to_builtins(replayed)
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append({"field": k, "recorded": a.get(k), "replayed": b.get(k)})
    return out


def check_range(
    messages: Sequence[Stored],
    lo: int,
    hi: int,
    *,
    until: int | None = None,
    graph: str | None = None,
    base: DeciderConfig | None = None,
) -> dict[str, Any]:
    """`check` of the decisions among ``messages[lo:hi]`` (the views folded from the first message)."""
    replayer = Replayer(messages)
    decisions = reproduced = rounds = 0
    mismatches: list[dict[str, Any]] = []
    last_round: tuple[Any, ...] | None = None
    by_task: dict[tuple[str, str], Recorded] = {}
    configs: dict[Any, DeciderConfig] = {}
    generations = 0
    freeze = gc.isenabled()
    try:
        for i in range(lo, min(hi, len(messages))):
            if freeze and i % FREEZE_EVERY == 0:
                gc.freeze()  # see FREEZE_EVERY
            m = messages[i]
            if until is not None and m.seq > until:
                break
            if m.subject.endswith(GENERATION_SUBJECTS):
                found = check_generation(replayer, m, graph, replayer.event(i))
                if found is not None:
                    generations += 1
                    decisions += 1
                    reproduced += not found
                    mismatches += found
                continue
            if not is_decision_subject(m.subject):
                continue
            recorded = replayer.event(i)  # decoded once: the folds use it when they pass it
            if not isinstance(recorded, Recorded) or (graph and getattr(recorded, "graph_id", "") != graph):
                continue
            if isinstance(recorded, act.GraphPaused | act.GraphResumed) and (recorded.by or recorded.now is None):
                continue  # a person's pause or resume: a fact, not a decision
            decisions += 1
            now = recorded.now or recorded.occurred_at
            seqs = recorded.view_seqs
            round_key = (seqs, now, recorded.decider_id, recorded.decider_version, recorded.policy, _scaled(recorded))
            if round_key != last_round:  # the decisions of one round share their inputs: decide once per round
                config = _with_scaling(_config_of(recorded, base, configs), recorded)
                actions, dispatches = decide_round(replayer.views(dict(seqs), config.scoring), now, config)
                by_task = {decision_key(a.event): a.event for a in actions}
                by_task.update({decision_key(d.event): d.event for d in dispatches})
                last_round = round_key
                rounds += 1
            replayed = by_task.get(decision_key(recorded))  # (one decision per task, or pause scope, a round)
            if replayed is not None and _same_bytes(replayed, recorded, m.data):
                reproduced += 1
                continue
            mismatches.append(
                {
                    "seq": m.seq,
                    "graph": getattr(recorded, "graph_id", ""),
                    "task": getattr(
                        recorded,
                        "task_id",
                        "(pause)"
                        if hasattr(recorded, "graph_id")
                        else "(scale-up)"
                        if isinstance(recorded, act.NodeScaleUpProposed)
                        else "(careful)"
                        if not hasattr(recorded, "node_id")
                        else "(scale-down)",
                    ),
                    "attempt": getattr(recorded, "attempt", 0),
                    "differences": _diff(recorded, replayed),
                }
            )
    finally:
        if freeze:
            gc.unfreeze()
    return {
        "decisions": decisions,
        "reproduced": reproduced,
        "mismatches": mismatches,
        "generations": generations,
        "view_rebuilds": replayer.rebuilds,
        "rounds": rounds,
    }


def _scaled(recorded: Recorded) -> tuple[str, float] | None:
    """The threshold a scaling proposal was made with, by its config name (None: not one)."""
    if isinstance(recorded, act.NodeScaleDownProposed):
        return ("idle_after_s", recorded.idle_after_s)
    if isinstance(recorded, act.NodeScaleUpProposed):
        return ("queued_after_s", recorded.queued_after_s)
    return None


def _with_scaling(config: DeciderConfig, recorded: Recorded) -> DeciderConfig:
    """The config a scaling proposal is re-derived with: scaling on, at the threshold it names
    (a decider's ``[decider.scaling]`` is not in the log; its dispatches do not depend on it)."""
    scaled = _scaled(recorded)
    if scaled is None:
        return config
    scaling = dataclasses.replace(config.scaling, enabled=True, **{scaled[0]: scaled[1]})
    return dataclasses.replace(config, scaling=scaling)


def _config_of(recorded: Recorded, base: DeciderConfig | None, configs: dict[Any, DeciderConfig]) -> DeciderConfig:
    """The config a decision was made with: ``base`` (or the defaults) with its decider id,
    version and policy (kept in ``configs``, one per triple)."""
    key = (recorded.decider_id, recorded.decider_version, recorded.policy)
    config = configs.get(key)
    if config is None:
        base = base or DeciderConfig()
        config = configs[key] = dataclasses.replace(
            base,
            decider_id=recorded.decider_id,
            version=recorded.decider_version,
            scoring=dataclasses.replace(base.scoring, policy=recorded.policy or "eft"),
        )
    return config


def _same_bytes(replayed: Any, recorded: Any, stored: bytes) -> bool:
    """The replayed decision encodes to the recorded one's bytes: compared with the stored bytes
    first (the recorded event re-encodes to them whenever the writer was this codec), else with
    the recorded event re-encoded."""
    mine = codec.encode(replayed)
    return mine == stored or mine == codec.encode(recorded)


GENERATION_SUBJECTS = (".TasksGenerated", ".GenerationLimitReached", ".BacklogItemTaken")


def _replay_work(replayer: Replayer, recorded: Any) -> Any:
    """The generated-work decision `decide`'s siblings make at the recorded views and ``now``."""
    from orchestrator.decision.backlog import take
    from orchestrator.decision.generate import generate

    views = replayer.views(dict(recorded.view_seqs))
    graphs = replayer.at("readiness", recorded.view_seqs.get("readiness", 0)).view.graphs
    decider = getattr(recorded, "decider_id", "")
    version = getattr(recorded, "decider_version", "")
    if isinstance(recorded, ev.BacklogItemTaken) and recorded.now is not None:
        t = take(graphs, views.autonomy, recorded.view_seqs, recorded.now, decider, version)
        return t.event if t is not None else None
    mine = {recorded.graph_id: graphs[recorded.graph_id]} if recorded.graph_id in graphs else {}
    return next(
        (g.event for g in generate(views.tasks, mine, recorded.view_seqs, recorded.now, decider, version)), None
    )


def check_generation(
    replayer: Replayer, m: Stored, graph: str | None, recorded: Any = None
) -> list[dict[str, Any]] | None:
    """Re-run a recorded generated-work decision (tasks generated, the limit, a backlog graph
    taken) with the views at its recorded sequences and its ``now``: None when the message is
    not one to check, else the mismatches (empty when reproduced byte for byte)."""
    if recorded is None:
        try:
            recorded = codec.decode(m.data, subject=m.subject, seq=m.seq)
        except MalformedEvent:
            return None
    kinds = ev.TasksGenerated | ev.GenerationLimitReached | ev.BacklogItemTaken
    if not isinstance(recorded, kinds) or recorded.now is None or (graph and recorded.graph_id != graph):
        return None
    replayed = _replay_work(replayer, recorded)
    if replayed is not None and _same_bytes(replayed, recorded, m.data):
        return []
    diff = [{"field": "decision", "recorded": type(recorded).__name__, "replayed": "none"}]
    if replayed is not None:
        a, b = msgspec.to_builtins(recorded), msgspec.to_builtins(replayed)
        diff = [
            {"field": k, "recorded": a.get(k), "replayed": b.get(k)}
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)
        ]
    what = "(backlog graph taken)" if isinstance(recorded, ev.BacklogItemTaken) else "(generated tasks)"
    return [{"seq": m.seq, "graph": recorded.graph_id, "task": what, "attempt": 0, "differences": diff}]

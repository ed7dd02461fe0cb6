"""Replay: the world at any sequence, and every recorded decision re-run with its recorded inputs.

`Replayer` folds the stored messages through the real projections (`projections.fold.Fold`,
the code the projector processes run). ``check`` re-runs the pure `decide` at each recorded
`TaskDispatched` and `TaskCacheHit` (a decision too) with the views at exactly the sequences the
decision names (``view_seqs``), its ``now`` and its policy, and compares the bytes of the decision
the decider made for that task.
A decision is *reproduced* when they are identical; otherwise the report names each field that
differs, recorded against replayed.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from orchestrator.decision.decide import DeciderConfig, Views, decide_round
from orchestrator.decision.readyset import ReadySet
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.slots import RoundMemo
from projections.fold import Fold
from projections.node_scores.fold import TypeEstimate
from projections.runner import PROJECTIONS
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from schemas.errors import MalformedEvent

VIEWS = ("readiness", "node-scores", "confidence")
FREEZE_EVERY = 16384  # messages between moves of the live objects out of the cyclic GC's generations (`gc.freeze`):
# the views' entries live to the end, and each full collection would walk them all again; unfrozen at the end
LOOKAHEAD = 1024  # messages ahead of the folds decoded and kept for them (a decision's views are just behind it)


class Stored(Protocol):
    """A stored message: its stream sequence, subject and bytes."""

    seq: int
    subject: str
    data: bytes


@dataclass
class Replayer:
    """Folds of every view over the same messages, each movable to any sequence.

    The folds move forward together (a decision's views are a few sequences apart), so each
    message is decoded once for all of them: decoded events wait in ``_decoded`` until the last
    fold has passed them.
    """

    messages: Sequence[Stored]
    folds: dict[str, Fold[Any]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    rebuilds: int = 0
    _decoded: list[Any] = field(default_factory=list)  # events (or MalformedEvent) of messages _base, _base+1, ...
    _base: int = 0
    _ready_sets: dict[ScoringConfig, ReadySet] = field(default_factory=dict)  # kept along the readiness fold
    _memo: RoundMemo = field(default_factory=RoundMemo)  # what the rounds decided here may share
    _types: dict[str, TypeEstimate] | None = None  # the node-scores fold's type estimates by type (until one changes)

    def event(self, i: int) -> Any:
        """The decoded event (or its `MalformedEvent`) of message ``i``, decoded once for every
        fold and for the check: a message a little ahead of the folds (a decision, whose views
        are a few sequences behind it) is decoded with the ones before it and kept for them."""
        k = i - self._base
        decoded = self._decoded
        if 0 <= k < len(decoded):
            return decoded[k]
        if 0 <= k - len(decoded) <= LOOKAHEAD:
            for j in range(self._base + len(decoded), i + 1):
                decoded.append(self._decode(j))
            return decoded[k]
        return self._decode(i)

    def _decode(self, i: int) -> Any:
        m = self.messages[i]
        try:
            return codec.decode(m.data, subject=m.subject, seq=m.seq)
        except MalformedEvent as bad:
            return bad

    def at(self, name: str, seq: int) -> Fold[Any]:
        """The fold of view ``name`` after exactly the messages up to ``seq``."""
        self.move({name: seq})
        return self.folds[name]

    def move(self, targets: dict[str, int]) -> None:
        """Move the folds of the views named in ``targets`` to exactly their sequences, together:
        the messages every fold passes are walked once for all of them (a fold ahead of its
        sequence starts again from the first message)."""
        for name, seq in targets.items():
            fold = self.folds.get(name)
            if fold is None or fold.seq > seq:
                if fold is not None:
                    self.rebuilds += 1
                self.folds[name] = Fold(PROJECTIONS[name])
                self.positions[name] = 0
                self._restarted(name)
        low = min(targets.values())
        here = {self.positions[name] for name in targets}
        if len(here) == 1:  # the usual case: one walk up to the lowest sequence for every fold
            self._walk(list(targets), here.pop(), low)
        for name, seq in targets.items():
            if seq > low or len(here) > 1:
                self._walk([name], self.positions[name], seq)
        for name in targets:
            self._settle(name, self.folds[name])
        self._forget()

    def _walk(self, names: list[str], i: int, seq: int) -> None:
        """Apply messages ``i, i+1, ...`` up to sequence ``seq`` to the folds ``names`` (all at ``i``)."""
        folds = [self.folds[name] for name in names]
        applies = [f.apply_event for f in folds]
        messages, n, event = self.messages, len(self.messages), self.event
        while i < n:
            m = messages[i]
            s = m.seq
            if s > seq:
                break
            e = event(i)
            if isinstance(e, MalformedEvent):
                for fold in folds:
                    fold.skip(m.subject, s, "malformed", str(e))
            else:
                subject = m.subject
                for apply in applies:
                    apply(e, subject, s)
            i += 1
        for name in names:
            self.positions[name] = i

    def _restarted(self, name: str) -> None:
        """Forget what was kept along a fold that starts again."""
        if name == "readiness":
            self._ready_sets.clear()
        elif name == "node-scores":
            self._types = None

    def _settle(self, name: str, fold: Fold[Any]) -> None:
        """After a move: hand what the fold changed to what is kept along it, then forget it
        (nothing is written)."""
        touched = fold.view.touched
        if touched:
            if name == "readiness" and self._ready_sets:
                self._follow_ready(fold)
            elif name == "node-scores" and self._types is not None and any(k.startswith("type.") for k in touched):
                self._types = None
        fold.discard_changes()

    def _follow_ready(self, fold: Fold[Any]) -> None:
        """Give the kept ready sets the tasks the readiness fold just changed (the values the
        projector writes, as the decider's index gets them)."""
        tasks = fold.view.tasks
        for key in fold.view.touched:
            if key.startswith("task."):
                task = tasks[S.task_of_key(key)]
                for ready_set in self._ready_sets.values():
                    ready_set.put(task)

    def _forget(self) -> None:
        """Drop the decoded events every fold has passed (a fold started again decodes anew)."""
        if len(self._decoded) < 4096:
            return
        low = min(self.positions.values())
        if low - self._base >= 4096:
            del self._decoded[: low - self._base]
            self._base = low

    def views(self, seqs: dict[str, int], cfg: ScoringConfig | None = None) -> Views:
        """The decide input as the decider saw it at these view sequences; with ``cfg``, with the
        ready tasks' order for it kept along the fold (`ReadySet`), as the decider keeps it."""
        targets = {"readiness": seqs.get("readiness", 0), "node-scores": seqs.get("node-scores", 0)}
        if "confidence" in seqs:
            targets["confidence"] = seqs["confidence"]
        self.move(targets)
        r = self.folds["readiness"].view
        n = self.folds["node-scores"].view
        types = self._types
        if types is None:
            types = self._types = {t.type: t for t in n.types.values()}
        ready_set = None
        if cfg is not None:
            ready_set = self._ready_sets.get(cfg)
            if ready_set is None:
                ready_set = self._ready_sets[cfg] = ReadySet(cfg, (r.tasks[k] for k in sorted(r.ready)))
        confidence, autonomy, threshold = 1.0, "full", None  # (Views' defaults: no confidence view)
        if "confidence" in seqs:
            c = self.folds["confidence"].view
            s = c.summary  # as `summary_value` renders it: its confidence and level as they are
            assert s is not None
            confidence, autonomy, threshold = s.confidence, s.level, c.quality.threshold
        return Views(
            tasks=r.tasks,
            nodes=n.nodes,
            seqs=dict(seqs),
            types=types,
            ready=r.ready,
            confidence=confidence,
            autonomy=autonomy,
            patterns=n.patterns,
            quality_threshold=threshold,
            ready_set=ready_set,
            memo=self._memo,
            cache=r.cache,
            graphs=r.graphs,
            health=r.health,
        )


Recorded = ev.TaskDispatched | ev.TaskCacheHit | ev.GraphPaused | ev.GraphResumed
# decisions besides dispatches (whose node follows the name); a person's pause or resume is not one (``by``)
DECISION_SUBJECT_ENDS = (".TaskCacheHit", ".GraphPaused", ".GraphResumed")


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
    """What a round decides once: a task (dispatch, cache hit), or a pause scope (pause, resume)."""
    if isinstance(e, ev.GraphPaused | ev.GraphResumed):
        return ("pause", e.graph_id)
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


def check(
    messages: Sequence[Stored],
    *,
    until: int | None = None,
    graph: str | None = None,
    jobs: int = 1,
    base: DeciderConfig | None = None,
) -> dict[str, Any]:
    """Re-run every recorded decision (optionally of one graph, up to ``until``) and compare.

    With ``jobs`` > 1 (and enough decisions to be worth a process, and fork available) the
    decisions are split into contiguous ranges checked by forked processes at once
    (`replay_jobs`), each folding the log from the start on its own; the report is the same.
    ``base``: the config the decider ran with (``niyantra decider --config``; its thresholds are
    not in the log); each decision's own decider id, version and policy replace its fields."""
    from orchestrator.replay import jobs as replay_jobs

    ranges = replay_jobs.split(messages, until, jobs)
    if len(ranges) > 1:
        return replay_jobs.run(messages, ranges, until, graph, base)
    return check_range(messages, 0, len(messages), until=until, graph=graph, base=base) | {"jobs": 1}


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
            if not isinstance(recorded, Recorded) or (graph and recorded.graph_id != graph):
                continue
            if isinstance(recorded, ev.GraphPaused | ev.GraphResumed) and (recorded.by or recorded.now is None):
                continue  # a person's pause or resume: a fact, not a decision
            decisions += 1
            now = recorded.now or recorded.occurred_at
            seqs = recorded.view_seqs
            round_key = (seqs, now, recorded.decider_id, recorded.decider_version, recorded.policy)
            if round_key != last_round:  # the decisions of one round share their inputs: decide once per round
                config = _config_of(recorded, base, configs)
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
                    "graph": recorded.graph_id,
                    "task": getattr(recorded, "task_id", "(pause)"),
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

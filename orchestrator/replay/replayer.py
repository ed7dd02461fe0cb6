"""Replay's world at any sequence: `Replayer` folds the stored messages through the real
projections (`projections.fold.Fold`, the code the projector processes run) and gives the
decider's views at the sequences a recorded decision names.

The check of recorded decisions against re-derived ones is in `orchestrator.replay.decisions`
(one range) and `orchestrator.replay.check` (the whole log, on one or several processes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.decision.decide import Views
from orchestrator.decision.readyset import ReadySet
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.slots import RoundMemo
from projections.fold import Fold
from projections.node_scores.fold import TypeEstimate
from projections.runner import PROJECTIONS
from schemas import codec
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
        careful, careful_seq = None, 0
        if "confidence" in seqs:
            c = self.folds["confidence"].view
            s = c.summary  # as `summary_value` renders it: its confidence and level as they are
            assert s is not None
            confidence, autonomy, threshold = s.confidence, s.level, c.quality.threshold
            careful, careful_seq = s.careful, s.careful_seq
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
            careful=careful,
            careful_seq=careful_seq,
        )

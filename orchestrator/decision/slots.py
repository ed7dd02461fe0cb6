"""One decide round's view of the nodes: when each node's slots are expected to be free (the
eft policy's reservations) and what the round computes once and reuses for every task it looks
at (a node's facts for a type, their words, a refused node's candidate). Mutable, and owned by
one call of `orchestrator.decision.decide.plan`; nothing here reads the clock.

A `RoundMemo`, when the caller keeps one across rounds (`Views.memo`), lets a round reuse what
earlier rounds computed: only answers of pure functions, each kept under everything it depends
on, so a round with a memo decides exactly what it decides without one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from orchestrator.decision.flags import FlagIndex
from orchestrator.decision.scoring import ScoringConfig, node_efficiency, success_probability
from projections.node_scores.fold import NodeView
from schemas.ids import from_token
from schemas.records import Candidate


class NodeFacts(NamedTuple):
    """A node's numbers for a task type in one round."""

    eff: float
    evidence: str
    p: float


MEMO_LIMIT = 20_000  # answers a memo keeps of each kind (all are dropped when one kind holds more)


class RoundMemo:
    """What rounds of `decide` share, kept by a caller that decides again and again (the decider,
    replay): a node's facts for a type (kept with the scores they were computed from, and
    reused only while the node's scores are that same object: views are frozen and replaced,
    never changed in place), the words of facts and of eligible candidates, refused nodes'
    candidates. Bound to one scoring config (a round with another one starts it afresh)."""

    def __init__(self) -> None:
        self.cfg: ScoringConfig | None = None
        self.facts: dict[tuple[str, str], tuple[object, NodeFacts]] = {}  # (node, type) → (its scores, facts)
        self.words: dict[tuple[float, float, NodeFacts, str], str] = {}
        self.said: dict[NodeFacts, tuple[str, str]] = {}
        self.refusals: dict[tuple[str, str], Candidate] = {}
        self.runs: dict[str, tuple[str, str]] = {}  # an active run's key → its task's (graph, task)
        self.streaks: dict[str, tuple[object, int, bool]] = {}  # node → (its scores, bound, a streak that long?)

    def bind(self, cfg: ScoringConfig) -> None:
        """Serve rounds under ``cfg``: forget everything when it is another config, or too much is kept."""
        kept: tuple[dict[Any, Any], ...] = (self.facts, self.words, self.said, self.refusals, self.runs, self.streaks)
        if self.cfg is not cfg or max(len(d) for d in kept) > MEMO_LIMIT:
            self.cfg = cfg
            self.facts, self.words, self.said, self.refusals, self.runs, self.streaks = {}, {}, {}, {}, {}, {}


Row = tuple[str, NodeView, "str | None", NodeFacts, list[float], float, float]  # see `RoundSlots.rows`


@dataclass
class RoundSlots:
    """When each node's slots are expected to be free (the eft policy's reservations), and what a
    round computes once and reuses for every task it looks at."""

    free_at: dict[str, list[float]]  # seconds from now, sorted, one entry per slot
    down: dict[str, str | None] = field(default_factory=dict)  # node → why it takes nothing (this round)
    facts: dict[tuple[str, str], NodeFacts] = field(default_factory=dict)
    flags: FlagIndex = field(default_factory=FlagIndex)  # patterns flagged this round
    refusals: dict[tuple[str, str], Candidate] = field(default_factory=dict)  # (node, reason) → its candidate
    words: dict[tuple[float, float, NodeFacts, str], str] = field(default_factory=dict)  # an eft reason by its numbers
    by_type: dict[str, list[Row]] = field(default_factory=dict)  # see rows()
    said: dict[NodeFacts, tuple[str, str]] = field(default_factory=dict)  # see fact_words()
    open: set[str] = field(default_factory=set)  # nodes with a slot free now (their first entry is 0.0)
    memo: RoundMemo | None = None  # kept across rounds by the caller (see `RoundMemo`)
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)  # see run_task()
    held: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # dependency → nodes with its outputs
    fleet: tuple[float, str] | None = None  # every node's transfer rate pooled (`transfer.fleet_rate`)

    def __post_init__(self) -> None:
        self.reopen()

    def share(self, memo: RoundMemo, cfg: ScoringConfig) -> None:
        """Reuse (and add to) what ``memo`` keeps from earlier rounds under ``cfg``."""
        memo.bind(cfg)
        self.memo = memo
        self.words, self.said, self.refusals, self.runs = memo.words, memo.said, memo.refusals, memo.runs

    def reopen(self) -> None:
        """Find the nodes with a slot free now (after ``free_at`` was filled in)."""
        self.open = {nid for nid, times in self.free_at.items() if times and times[0] == 0.0}

    def node_facts(self, node: NodeView, task_type: str, cfg: ScoringConfig) -> NodeFacts:
        """Efficiency, its evidence and P(success) of a node for a type (and the words about
        them), computed once per round."""
        key = (node.node_id, task_type)
        memo = self.memo
        if memo is not None:  # the memo's table serves as the round's
            known = memo.facts.get(key)
            if known is not None and known[0] is node.scores:  # (the facts depend on the scores alone)
                return known[1]
            fresh = self._facts(node, task_type, cfg)
            memo.facts[key] = (node.scores, fresh)
            return fresh
        f = self.facts.get(key)
        if f is None:
            f = self.facts[key] = self._facts(node, task_type, cfg)
        return f

    @staticmethod
    def _facts(node: NodeView, task_type: str, cfg: ScoringConfig) -> NodeFacts:
        eff, evidence = node_efficiency(node, task_type, cfg)
        return NodeFacts(eff, evidence, success_probability(node, task_type))

    def rows(
        self, task_type: str, nodes: Mapping[str, NodeView], node_order: list[str], cfg: ScoringConfig
    ) -> list[Row]:
        """Per node in order: its id, view, why it takes nothing this round (or None), its facts for
        the type, its slots' free times (the round's list, which `take` changes in place), and its
        efficiency and P(success) (at least 1e-6) for eft's rank; once per round and type."""
        rows = self.by_type.get(task_type)
        if rows is None:
            down, free_at, facts = self.down, self.free_at, self.node_facts
            rows = self.by_type[task_type] = []
            for nid in node_order:
                node = nodes[nid]
                f = facts(node, task_type, cfg)
                rows.append((nid, node, down[nid], f, free_at[nid], f.eff, max(f.p, 1e-6)))
        return rows

    def streaky(self, node: NodeView, bound: int) -> bool:
        """Whether one of the node's task types has failed ``bound`` times in a row (kept in the
        memo with the scores it was found in)."""
        memo = self.memo
        if memo is not None:
            known = memo.streaks.get(node.node_id)
            if known is not None and known[0] is node.scores and known[1] == bound:
                return known[2]
        found = any(s.streak.failures >= bound for s in node.scores.values())
        if memo is not None:
            memo.streaks[node.node_id] = (node.scores, bound, found)
        return found

    def run_task(self, run: str) -> tuple[str, str]:
        """The (graph, task) of an active run's key (``graph/task#attempt``), parsed once."""
        key = self.runs.get(run)
        if key is None:
            g, _, t = run.rpartition("#")[0].partition("/")
            key = self.runs[run] = (from_token(g), from_token(t))
        return key

    def fact_words(self, f: NodeFacts) -> tuple[str, str]:
        """A node's facts in a candidate's reason (" at speed 1.00x (3 runs of this type; " and
        ", P(success) 1.00"), formatted once per round and numbers, when a candidate needs them."""
        w = self.said.get(f)
        if w is None:
            w = self.said[f] = (f" at speed {f.eff:.2f}x ({f.evidence}; ", f", P(success) {f.p:.2f}")
        return w

    def refusal(self, node_id: str, reason: str) -> Candidate:
        """The (immutable, shared) candidate of a node refused for ``reason``."""
        c = self.refusals.get((node_id, reason))
        if c is None:
            c = self.refusals[(node_id, reason)] = Candidate(node_id=node_id, score=0.0, reason=reason, eligible=False)
        return c

    def start(self, node: str) -> float | None:
        times = self.free_at.get(node)
        return times[0] if times else None

    def take(self, node: str, until: float) -> None:
        times = self.free_at[node]
        times.pop(0)
        times.append(until)
        times.sort()
        if times[0] == 0.0:
            self.open.add(node)
        else:
            self.open.discard(node)

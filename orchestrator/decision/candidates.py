"""One ready task's candidates in a decide round: every node with its score and the reason in
words (not alive, lost, draining, missing a label, no free slot, flagged, avoided after a
failure there, or its expected finish and value), and the one the policy picks.

``eft`` ranks a node by its expected finish (the slot's expected start + the time to fetch the
inputs it does not hold (`orchestrator.decision.transfer`) + the run's expected duration there,
the duration over P(success)) and may pick a busy node that would still
finish first (a reservation: no event, no words); ``seed`` by its free slots; ``fifo`` takes
the first free node by id. Pure: the round's `RoundSlots` holds what it reuses; nothing reads
the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from orchestrator.decision.availability import missing_labels
from orchestrator.decision.scoring import ScoringConfig, expected_value, priority, task_estimate
from orchestrator.decision.slots import NodeFacts, RoundSlots
from orchestrator.decision.transfer import Fetch, Need, fetch_for, fetch_words, fleet_rate, sent_to, task_need
from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView
from schemas.records import Candidate

if TYPE_CHECKING:
    from orchestrator.decision.decide import DeciderConfig, Views


class Option(NamedTuple):
    """One node's numbers for a task; a Candidate (with its reason in words) is made only when needed."""

    rank: float
    node_id: str
    start: float
    duration: float
    free_now: int
    facts: NodeFacts
    fetch: Fetch | None  # eft, a task with inputs in the store: what this node would fetch


_option = tuple.__new__  # builds an Option from its fields' tuple (at C speed; `Option(...)` runs Python code)
Choice = tuple[Candidate, tuple[Candidate, ...], float, float]


def choose(
    task: TaskView, views: Views, now: datetime, config: DeciderConfig, slots: RoundSlots, node_order: list[str]
) -> Choice | None:
    """The chosen candidate (eligible: dispatch now; not eligible: a reservation), all candidates,
    and the chosen slot's expected start and how long the task is expected to hold it: the fetch
    of its inputs (eft) and the run (seconds; the dispatch's expected duration, which confidence
    checks against the completion's time, the fetch included)."""
    cfg = config.scoring
    est, source = task_estimate(task, views.types, cfg)
    need = task_need(task, views.tasks, slots.held) if task.depends_on and cfg.policy == "eft" else None
    options, refused = _options(task, views, est, cfg, slots, node_order, need)
    if slots.flags.nodes_for(task):
        options = _avoid_flagged(task, views, options, refused, slots, node_order)
    if task.failed_on:
        avoid = _avoided(task, options, cfg)
        if avoid is not None:
            refused[task.failed_on] = avoid
            options = [o for o in options if o.node_id != task.failed_on]
    if not cfg.hold_for_faster:
        refused.update({o.node_id: f"no free slot (free in {o.start:.1f}s)" for o in options if o.start > 0.0})
        options = [o for o in options if o.start == 0.0]
    if not options:
        return None
    best = min(options)  # by (rank, node id): node ids are unique, so the rest never counts
    held = best.duration + best.fetch.seconds if best.fetch is not None else best.duration  # the slot's hold
    if best.start > 0.0:  # a reservation: no event, so no words needed
        return Candidate(node_id=best.node_id, score=0.0, reason="", eligible=False), (), best.start, held
    value = priority(task, now, cfg)
    if cfg.policy == "eft":
        candidates = _eft_candidates(options, refused, value, f"{source} {est:.1f}s)", slots, node_order, need)
    else:
        by_node = {o.node_id: o for o in options}
        candidates = tuple(
            _candidate(by_node[nid], views.nodes[nid], cfg) if nid in by_node else slots.refusal(nid, refused[nid])
            for nid in node_order
        )
    chosen = next(c for c in candidates if c.node_id == best.node_id)
    if best.fetch is not None and best.fetch.missing:
        sent_to(task, best.node_id, slots.held)  # the rest of the round counts it as held there
    return chosen, candidates, best.start, held


def _eft_candidates(
    options: list[Option],
    refused: dict[str, str],
    value: float,
    task_words: str,
    slots: RoundSlots,
    node_order: list[str],
    need: Need | None = None,
) -> tuple[Candidate, ...]:
    """Every node's candidate under eft: an eligible one scored by its expected value, with its
    finish time (and the transfer term, when the task has inputs in the store) in words. Nodes
    with the same numbers share their score and words (computed once per task and round; the
    words once for as long as the round's memo keeps them). The options are in node order
    (`_options` makes them so and every filter keeps it)."""
    out: list[Candidate] = []
    scores: dict[tuple[float, float], float] = {}
    words = slots.words
    j, n = 0, len(options)
    for nid in node_order:
        if j == n or options[j].node_id != nid:
            out.append(slots.refusal(nid, refused[nid]))
            continue
        _, _, start, dur, _, f, fetch = options[j]
        j += 1
        fetch_s, said = (fetch.seconds, fetch_words(fetch, need)) if fetch is not None and need else (0.0, "")
        cost = dur + fetch_s
        score = scores.get((f.p, cost))
        if score is None:
            score = scores[(f.p, cost)] = expected_value(f.p, value, cost)
        key = (start, dur, f, task_words)
        reason = None if said else words.get(key)  # (words with a transfer term are not kept: its seconds vary)
        if reason is None:
            speed_words, p_words = slots.fact_words(f)
            reason = (
                f"finish in {start + cost:.1f}s: {said}{dur:.1f}s{speed_words}{task_words}"
                + (f" after waiting {start:.1f}s" if start > 0 else "")
                + p_words
            )
            if not said:
                words[key] = reason
        out.append(Candidate(node_id=nid, score=score, reason=reason, eligible=start == 0.0))
    return tuple(out)


def _options(
    task: TaskView,
    views: Views,
    est: float,
    cfg: ScoringConfig,
    slots: RoundSlots,
    node_order: list[str],
    need: Need | None = None,
) -> tuple[list[Option], dict[str, str]]:
    """Every node that could take the task with its numbers, and why each other node cannot."""
    options: list[Option] = []
    refused: dict[str, str] = {}
    policy, labels = cfg.policy, task.labels
    eft = policy == "eft"
    for nid, node, why, f, times, eff, p_floor in slots.rows(task.type, views.nodes, node_order, cfg):
        if why is None and labels:
            why = missing_labels(task, node)
        if why is None and not times:
            why = f"no slot ({node.slots} slots)"
        if why is not None:
            refused[nid] = why
            continue
        start = times[0]
        if eft:  # ranked by expected finish (not by free slots)
            dur = est / eff
            if need is None:
                options.append(_option(Option, (start + dur / p_floor, nid, start, dur, 0, f, None)))
                continue
            if slots.fleet is None:  # (once per round, and only for a task with inputs in the store)
                slots.fleet = fleet_rate(views.nodes, node_order, cfg.transfer_prior_bps, cfg.transfer_prior_s)
            fetch = fetch_for(need, node, slots.fleet, cfg.transfer_prior_s)
            options.append(_option(Option, (start + fetch.seconds + dur / p_floor, nid, start, dur, 0, f, fetch)))
            continue
        if start > 0.0:
            refused[nid] = f"no free slot ({node.slots}/{node.slots} busy, free in {start:.1f}s)"
            continue
        free_now = times.count(0.0)
        rank = -float(free_now) if policy == "seed" else 0.0
        options.append(_option(Option, (rank, nid, start, est / f.eff, free_now, f, None)))
    return options, refused


def _avoid_flagged(
    task: TaskView,
    views: Views,
    options: list[Option],
    refused: dict[str, str],
    slots: RoundSlots,
    node_order: list[str],
) -> list[Option]:
    """The options without the nodes flagged for the task's type, unless every usable node is
    flagged (then the task was approved past its escalation and may use them)."""
    flagged = slots.flags.nodes_for(task)
    usable = [nid for nid in node_order if slots.down[nid] is None and missing_labels(task, views.nodes[nid]) is None]
    if all(nid in flagged for nid in usable):
        return options
    refused.update({nid: flagged[nid] for nid in usable if nid in flagged})
    return [o for o in options if o.node_id not in flagged]


def _avoided(task: TaskView, options: list[Option], cfg: ScoringConfig) -> str | None:
    """Why a retry avoids the node its last attempt failed on (lost, or failing there), or None.

    Only when another node can take it: a retry never waits on avoidance alone.
    """
    if not task.failed_on or not any(o.node_id != task.failed_on for o in options):
        return None
    mine = next((o for o in options if o.node_id == task.failed_on), None)
    if mine is None:
        return None
    if task.failure_kind == "lost":
        return f"avoided: attempt {task.attempt} was lost here"
    if mine.facts.p < cfg.avoid_below_success:
        return f"avoided: attempt {task.attempt} failed here and P(success) is {mine.facts.p:.2f}"
    return None


def _candidate(o: Option, node: NodeView, cfg: ScoringConfig) -> Candidate:
    """A node's candidate under seed (scored by its free slots) or fifo."""
    reason = f"{o.free_now} of {node.slots} slots free"
    return Candidate(node_id=o.node_id, score=float(o.free_now) if cfg.policy == "seed" else 1.0, reason=reason)

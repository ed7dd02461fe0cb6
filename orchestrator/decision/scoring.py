"""Scores of the decision core: how urgent a ready task is, and what each node would make of it.

Pure functions of the views and ``now``. Three named policies:

- ``eft`` (default): a task's priority is its critical-path rank (upward rank, seconds) plus
  ``downstream_weight_s`` per transitive dependent, ``hint_weight_s`` per point of the user's
  priority hint, and ``aging_per_s`` seconds per second it has waited (unbounded: no
  starvation). Each node is scored by the expected value of running the task there,
  ``P(success)·value − P(failure)·cost`` with value = priority, cost = the expected run time on
  the node, and P(success) the node's decayed success rate for the task type (with a
  prior of one success). The node chosen is the one with the earliest expected finish, where the run time is
  the task's estimate divided by the node's learned efficiency (decayed expected/actual for
  that task type, shrunk toward the node's efficiency over all types, then toward 1.0), and a
  node that is busy but would still finish first is waited for (the slot is reserved). The
  expected finish includes the time to fetch the task's inputs the node does not hold yet, at
  the node's learned transfer rate (`orchestrator.decision.transfer`).
- ``seed``: our reading of the seed article's formula: priority = 10 × direct dependents −
  estimate in minutes (+ the same aging); the node with the most free slots.
- ``fifo``: longest-waiting first, the first free node by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from projections.decay import Decayed
from projections.node_scores.fold import NodeView, TypeEstimate
from projections.readiness.fold import TaskView

POLICIES = ("eft", "seed", "fifo")


@dataclass(frozen=True)
class ScoringConfig:
    """Knobs of the scores; part of the decider's config."""

    policy: str = "eft"
    default_estimate_s: float = 60.0
    aging_per_s: float = 0.05
    downstream_weight_s: float = 1.0
    hint_weight_s: float = 60.0
    prior_samples: float = 1.0
    hold_for_faster: bool = True
    backoff_base_s: float = 5.0
    backoff_max_s: float = 300.0
    retry_timeout_factor: float = 2.0
    avoid_below_success: float = 0.5
    flag_after: int = 3  # failures in a row that flag a pattern (`projections.feedback`)
    flag_cooldown_s: float = 1800.0  # a flag lifts this long after the pattern's last failure
    transfer_prior_bps: float = 100e6  # a node's transfer rate before it fetched anything (100 MB/s)
    transfer_prior_s: float = 1.0  # seconds of pseudo-evidence the prior rate weighs (`transfer`)


def backoff_until(task: TaskView, cfg: ScoringConfig) -> datetime | None:
    """When a retry may go: ``backoff_base_s × 2^(attempt-1)`` (at most ``backoff_max_s``) after the failure."""
    if not task.failure_kind or task.ready_since is None or task.attempt < 1:
        return None
    delay = min(cfg.backoff_base_s * 2 ** (task.attempt - 1), cfg.backoff_max_s)
    return task.ready_since + timedelta(seconds=delay)


def task_estimate(task: TaskView, types: Mapping[str, TypeEstimate], cfg: ScoringConfig) -> tuple[float, str]:
    """Seconds the task should take on a node of efficiency 1, and where the figure comes from."""
    if task.estimate_s is not None:
        return task.estimate_s, "its estimate"
    learned = types.get(task.type)
    if learned is not None and learned.duration.mean is not None:
        return learned.duration.mean, f"learned mean of type {task.type or '-'}"
    return cfg.default_estimate_s, "the default estimate"


def waited_s(task: TaskView, now: datetime) -> float:
    """Seconds since the task became ready."""
    return max((now - task.ready_since).total_seconds(), 0.0) if task.ready_since else 0.0


def aging_rate(cfg: ScoringConfig) -> float:
    """Priority gained per second of waiting under the policy (the same for every task)."""
    return 1.0 if cfg.policy == "fifo" else cfg.aging_per_s


def priority_base(task: TaskView, cfg: ScoringConfig) -> float:
    """A ready task's priority before it waits (see `priority_terms`)."""
    if cfg.policy == "seed":
        return 10.0 * len(task.dependents) - (task.estimate_s or cfg.default_estimate_s) / 60.0
    if cfg.policy == "fifo":
        return 0.0
    return task.rank_s + cfg.downstream_weight_s * task.downstream + cfg.hint_weight_s * (task.priority or 0)


def priority_terms(task: TaskView, cfg: ScoringConfig) -> tuple[float, float]:
    """A ready task's priority as ``base + rate × seconds waited``: (base, rate). Linear in the
    wait under every policy, so the order of the ready tasks is the order of ``base − rate ×
    ready_since`` whatever ``now`` is (`orchestrator.decision.readyset`)."""
    return priority_base(task, cfg), aging_rate(cfg)


def priority(task: TaskView, now: datetime, cfg: ScoringConfig) -> float:
    """Urgency of a ready task under the policy (higher first); grows without bound while it waits."""
    base, rate = priority_terms(task, cfg)
    return base + rate * waited_s(task, now)


def _shrunk(d: Decayed, prior: float, prior_samples: float) -> float:
    if d.mean is None or d.w <= 0:
        return prior
    return (d.w * d.mean + prior_samples * prior) / (d.w + prior_samples)


def node_efficiency(node: NodeView, task_type: str, cfg: ScoringConfig) -> tuple[float, str]:
    """The node's learned speed for a task type (1.0 = as estimated), and the evidence behind it."""
    w = s1 = 0.0
    runs = 0
    for sc in node.scores.values():
        w += sc.efficiency.w
        s1 += sc.efficiency.s1
        runs += sc.efficiency.n
    prior = (s1 + cfg.prior_samples) / (w + cfg.prior_samples) if w > 0 else 1.0
    score = node.scores.get(task_type)
    if score is None or score.efficiency.n == 0:
        return prior, (f"node average of {runs} runs" if w > 0 else "no runs")
    return _shrunk(score.efficiency, prior, cfg.prior_samples), f"{score.efficiency.n} runs of this type"


def success_probability(node: NodeView, task_type: str) -> float:
    """Decayed success rate of the node for the type, with a prior of one success.

    Without runs of the type, the node's rate over all types; a node never seen is trusted (1.0).
    """
    score = node.scores.get(task_type)
    if score is not None and score.success.w > 0:
        return (score.success.s1 + 1.0) / (score.success.w + 1.0)
    w = sum(s.success.w for s in node.scores.values())
    return (sum(s.success.s1 for s in node.scores.values()) + 1.0) / (w + 1.0) if w > 0 else 1.0


def expected_value(p_success: float, value: float, cost_s: float) -> float:
    """P(success)·value − P(failure)·cost, the score recorded for an eligible candidate."""
    return round(p_success * value - (1.0 - p_success) * cost_s, 6)

"""The `TaskDispatched` event a dispatch decision appends: attempt, phase (a tier-2 task's
preflight first), command, timeout (a retry after a timeout gets more), the retry strategy in
words, and the decision's inputs (candidates, confidence, autonomy, policy, world hash, view
sequences, decider, ``now``), and the task's data: its graph's source manifest, its declared
outputs and its dependencies' stored outputs (what its agent lays out before it runs). Pure:
everything comes in as arguments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from orchestrator.decision.cachehit import cache_miss
from orchestrator.decision.scoring import ScoringConfig, backoff_until
from orchestrator.decision.timeouts import learned_timeout
from projections.readiness.fold import TaskView
from schemas.events import TaskDispatched
from schemas.ids import task_ref
from schemas.records import ArtifactRecord, Candidate

if TYPE_CHECKING:
    from orchestrator.decision.decide import DeciderConfig, Views


def _timeout(task: TaskView, views: Views, config: DeciderConfig) -> tuple[float | None, str]:
    """The run's timeout and, when learned, how: a retry after a timeout gets
    ``retry_timeout_factor`` times the task's own timeout; a task without one gets its type's
    learned timeout (`orchestrator.decision.timeouts`), if any."""
    cfg = config.scoring
    if task.failure_kind == "timeout" and task.timeout_s is not None:
        return round(task.timeout_s * cfg.retry_timeout_factor, 6), ""
    learned = learned_timeout(task, views.types, config.timeouts, cfg.retry_timeout_factor)
    return (task.timeout_s, "") if learned is None else learned


def _strategy(task: TaskView, best: Candidate, cfg: ScoringConfig) -> str:
    """The retry strategy in words ("" for a first attempt)."""
    if task.attempt == 0:
        return ""
    parts = [f"retry {task.attempt + 1} of {task.max_attempts} after {task.failure_kind or 'a failure'}"]
    until = backoff_until(task, cfg)
    if until is not None and task.ready_since is not None:
        parts.append(f"backoff {(until - task.ready_since).total_seconds():.0f}s")
    if task.failed_on:
        parts.append(f"on {best.node_id}" + (" (another node)" if best.node_id != task.failed_on else " (same node)"))
    if task.failure_kind == "timeout" and task.timeout_s is not None:
        parts.append(f"timeout {task.timeout_s:.0f}s -> {task.timeout_s * cfg.retry_timeout_factor:.0f}s")
    return "; ".join(parts)


def dep_outputs(task: TaskView, views: Views) -> tuple[ArtifactRecord, ...]:
    """The stored outputs of the task's dependencies (its agent lays them out before it runs), by path."""
    found: dict[str, ArtifactRecord] = {}
    for dep in task.depends_on:
        view = views.tasks.get((task.graph_id, dep))
        for record in view.outputs if view is not None else ():
            found.setdefault(record.path, record)
    return tuple(found[p] for p in sorted(found))


def dispatch_event(
    task: TaskView,
    best: Candidate,
    candidates: tuple[Candidate, ...],
    duration: float,
    views: Views,
    now: datetime,
    config: DeciderConfig,
    digest: str,
) -> TaskDispatched:
    """The event of dispatching ``task`` to the ``best`` candidate (its preflight, if it needs one)."""
    preflight = task.tier == 2 and task.preflight_state != "passed" and task.preflight is not None
    attempt = task.attempt if preflight else task.attempt + 1
    kind = "preflight" if preflight else "dispatch"
    timeout, rule = _timeout(task, views, config) if not preflight else (task.timeout_s, "")
    return TaskDispatched(
        event_id=f"{kind}:{task_ref(task.graph_id, task.task_id)}:{attempt}",
        occurred_at=now,
        causation_id=f"readiness@{task.seq}",
        correlation_id=task.graph_id,
        graph_id=task.graph_id,
        task_id=task.task_id,
        node_id=best.node_id,
        attempt=attempt,
        command=task.preflight if preflight and task.preflight else task.command,
        timeout_s=timeout,
        timeout_rule=rule,
        expected_duration_s=round(duration, 6),
        candidates=candidates,
        confidence=views.confidence,
        autonomy=views.autonomy,
        policy=config.policy,
        world_hash=digest,
        view_seqs=dict(sorted(views.seqs.items())),
        decider_id=config.decider_id,
        decider_version=config.version,
        now=now,
        phase="preflight" if preflight else "run",
        strategy=_strategy(task, best, config.scoring) if not preflight else "",
        env=task.env,
        scope=task.scope,
        cache_miss=cache_miss(task, views.cache) if task.action_key and not preflight else "",
        action_key=task.action_key if not preflight else "",
        source_tree=task.source_tree,
        outputs=task.output_decls if not preflight else (),
        dep_outputs=dep_outputs(task, views) if task.depends_on else (),
    )

"""Why a task is not running right now: one line first, then the detail (pure).

Uses the same rules as `decide` (`gate`, `unavailable`, the policy's slot reservations), so
the answer is the decider's own reason, not a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.decision.cachehit import cache_miss, usable_entry
from orchestrator.decision.decide import DeciderConfig, Views, escalated, gate, paused_of, plan, unavailable
from orchestrator.decision.flags import flag_index
from orchestrator.decision.readyset import ranked
from orchestrator.decision.scoring import priority, task_estimate
from projections.readiness.fold import TaskView
from schemas.events import TaskDispatched


def _ago(now: datetime, then: datetime | None) -> str:
    return f"{(now - then).total_seconds():.0f}s ago" if then else "at an unknown time"


def _blockers(task: TaskView, views: Views, now: datetime, config: DeciderConfig) -> list[str]:
    out = []
    for d in task.waiting_for:
        b = views.tasks.get((task.graph_id, d))
        if b is None:
            out.append(f"{d}: unknown")
            continue
        est, _ = task_estimate(b, views.types, config.scoring)
        if b.state == "running" and b.started_at is not None:
            left = max(est - (now - b.started_at).total_seconds(), 0.0)
            out.append(f"{d}: running on {b.node}, about {left:.0f}s left")
        elif b.state in ("ready", "dispatched"):
            out.append(f"{d}: {b.state}, about {est:.0f}s once it runs")
        else:
            out.append(f"{d}: {b.state}" + (f" ({b.reason})" if b.reason else ""))
    return out


def why(task: TaskView, views: Views, now: datetime, config: DeciderConfig) -> dict[str, Any]:
    """``{"headline": one line, "details": [lines], "state": ...}`` for one task."""
    details: list[str] = []
    if task.state in ("succeeded", "failed", "cancelled"):
        head = f"it has finished: {task.state}" + (f" ({task.reason})" if task.reason else "")
    elif task.state in ("dispatched", "running"):
        head = f"it is {task.state} on {task.node} (attempt {task.attempt}, since {_ago(now, task.started_at)})"
    elif task.state == "pending" and task.waiting_for:
        head = f"waiting for {' and '.join(task.waiting_for)}"
        details = _blockers(task, views, now, config)
    elif task.state == "pending" and task.reason.startswith("in the backlog"):
        head = f"{task.reason}: taken when nothing is ready or running and autonomy is full (niyantra backlog list)"
    elif task.awaiting_approval or (task.tier == 3 and task.approved_by is None and task.state == "pending"):
        head = f"awaiting approval: niyantra approve {task.graph_id}/{task.task_id} --by NAME"
    else:
        head, details = _ready(task, views, now, config)
        h = views.health
        if h is not None and h.scale_up is not None and not head.startswith("ready: the next decision"):
            details.append(f"scale-up proposed (queued since {h.scale_up.strftime('%H:%M:%S')}): {h.scale_up_reason}")
        if views.careful is not None:
            c = views.careful
            details.append(f"careful mode since {c.since.strftime('%H:%M:%S')}: {c.reason}")
    return {"graph": task.graph_id, "task": task.task_id, "state": task.state, "headline": head, "details": details}


def _ready(task: TaskView, views: Views, now: datetime, config: DeciderConfig) -> tuple[str, list[str]]:
    if task.action_key:
        entry = usable_entry(task, views.cache)
        if entry is not None:
            src = f"{entry.graph_id}/{entry.task_id} attempt {entry.attempt}"
            return f"ready: the next decision reuses the cached success of {src} (no node needed)", []
        head, details = _not_cached(task, views, now, config)
        return head, [f"cache: {cache_miss(task, views.cache)}", *details]
    return _not_cached(task, views, now, config)


def _not_cached(task: TaskView, views: Views, now: datetime, config: DeciderConfig) -> tuple[str, list[str]]:
    gated = gate(task, views.autonomy, now, config.scoring)
    if gated is not None:
        return gated, [f"autonomy {views.autonomy} (confidence {views.confidence:.2f})"]
    paused = paused_of(views, now, config)
    held = paused.reason(task.graph_id) if paused else None
    if held is not None:
        return held, [f"resume by hand: niyantra resume {task.graph_id} --by NAME"]
    reasons = {nid: unavailable(task, n, now, config.node_ttl_s) for nid, n in sorted(views.nodes.items())}
    details = [
        f"{nid}: {r or f'{len(n.active)} of {n.slots} slots busy'}"
        for (nid, r), n in zip(reasons.items(), (views.nodes[k] for k in reasons), strict=True)
    ]
    flags = flag_index(views.nodes, views.patterns, now, config.scoring)
    if flags:
        flagged = flags.nodes_for(task)
        details += [flagged[nid] for nid, r in reasons.items() if r is None and nid in flagged]
        escalation = escalated(task, views, now, config, flags)
        if escalation is not None:
            return escalation, details
    usable = [nid for nid, r in reasons.items() if r is None]
    if not views.nodes:
        return "no node has registered", details
    if not usable:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(task.labels.items()))
        return (f"no live node with label {labels}" if labels else "no live node"), details
    if all(len(views.nodes[n].active) >= views.nodes[n].slots for n in usable):
        return f"every usable node is busy ({', '.join(usable)})", details
    shortest = views.autonomy == "cautious" or views.careful is not None
    ready = sorted(
        (t for t in views.tasks.values() if t.state == "ready"),
        key=lambda t: (-priority(t, now, config.scoring), t.graph_id, t.task_id),
    )
    if shortest:  # cautious autonomy and careful mode: smallest estimate first (`readyset.ranked`)
        ready = list(ranked(views, now, config.scoring, shortest_first=True))
    rank = next(
        i for i, t in enumerate(ready, 1) if t is task or (t.graph_id, t.task_id) == (task.graph_id, task.task_id)
    )
    dispatches, reserved = plan(views, now, config)
    key = (task.graph_id, task.task_id)
    planned = [d for d in dispatches if (d.event.graph_id, d.event.task_id) == key]
    if planned:
        e = planned[0].event
        assert isinstance(e, TaskDispatched)  # (a hit was answered before any node was looked at)
        return f"ready: the next decision sends it to {e.node_id}", details
    if key in reserved:
        node, wait = reserved[key]
        return f"ready, waiting for {node}: it frees up in about {wait:.0f}s and still finishes the task first", details
    if shortest:
        est, _ = task_estimate(task, views.types, config.scoring)
        head = f"ready, {rank} of {len(ready)} by estimate ({est:g}s): shorter tasks take the free slots first"
        return head, details
    return f"ready, priority {rank} of {len(ready)}: higher-priority tasks take the free slots first", details

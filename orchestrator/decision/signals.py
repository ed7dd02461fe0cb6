"""Decisions that are not dispatches: autonomy changes, alerts and unschedulable tasks (pure).

- When the autonomy level the views imply differs from the last recorded one, an
  `AutonomyChanged` says so with the reason (the confidence and the threshold it crossed), and
  a level of ``supervised`` also raises an `Alert` for a person.
- A ready task that no decision dispatched for longer than ``after_s`` gets one `Unschedulable`
  naming the reason (the same words as `niyantra why`), once per time it became ready; a task
  escalated to approval by flagged patterns (`orchestrator.decision.flags`) gets it at once, so the log
  says why it waits for a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from orchestrator.decision.availability import unavailable
from orchestrator.decision.decide import DeciderConfig, Views, escalated, gate
from orchestrator.decision.flags import flag_index
from orchestrator.decision.why import why
from schemas import actions as act
from schemas import eventbase as evbase
from schemas import events as ev
from schemas import records as rec
from schemas.ids import task_ref

UNSCHEDULABLE_AFTER_S = 300.0


def autonomy_change(views: Views, now: datetime, last_level: str | None) -> list[evbase.Event]:
    """`AutonomyChanged` (and an `Alert` when supervised) if the level moved since ``last_level``."""
    level = views.autonomy
    if level == (last_level or "full"):
        return []
    eid = f"autonomy:{level}:{now.isoformat()}"
    reason = f"confidence {views.confidence:.2f} implies {level} (was {last_level or 'full'})"
    out: list[evbase.Event] = [
        ev.AutonomyChanged(
            event_id=eid,
            occurred_at=now,
            level=cast(rec.AutonomyLevel, level),
            previous=cast(rec.AutonomyLevel, last_level or "full"),
            confidence=views.confidence,
            reason=reason,
        )
    ]
    if level == "supervised":
        out.append(
            act.Alert(
                event_id=f"alert:{eid}",
                occurred_at=now,
                causation_id=eid,
                kind="autonomy",
                about="system",
                message=f"autonomy is supervised: {reason}; nothing runs without approval",
            )
        )
    return out


def unschedulable(
    views: Views,
    now: datetime,
    config: DeciderConfig,
    dispatched: Iterable[tuple[str, str]],
    already: set[tuple[str, str, str]],
    after_s: float = UNSCHEDULABLE_AFTER_S,
) -> list[ev.Unschedulable]:
    """One `Unschedulable` per ready task waiting longer than ``after_s`` that this round did not
    dispatch; ``already`` holds (graph, task, ready_since) that were reported (updated here).

    A task is judged only against a node view that has seen the event that made it ready (the
    node-scores sequence at least the task's): the two views are built by separate projectors,
    and a lagging node view would otherwise report, say, "no node has registered" for a node
    that registered before the task was submitted. The report then waits for a later round.

    A task that nothing holds back but busy slots (no gate, not escalated, and a live node with
    its labels) is queued, not unschedulable: it runs when a slot frees, and is not reported.
    That also keeps the scan linear: a graph of 100,000 independent tasks on three nodes has
    tens of thousands waiting past the threshold, and explaining each (`why` ranks every ready
    task) made one scan quadratic and stalled the decider.
    """
    sent = set(dispatched)
    nodes_seq = views.seqs.get("node-scores")
    out: list[ev.Unschedulable] = []
    flags = flag_index(views.nodes, views.patterns, now, config.scoring)
    placeable: dict[tuple[tuple[str, str], ...], bool] = {}  # labels -> some live node has them
    for g, t in _ready_keys(views):
        task = views.tasks[(g, t)]
        if task.ready_since is None or (g, t) in sent or (nodes_seq is not None and nodes_seq < task.seq):
            continue
        held = bool(flags) and escalated(task, views, now, config, flags) is not None
        if (now - task.ready_since).total_seconds() < after_s and not held:
            continue
        if not held and gate(task, views.autonomy, now, config.scoring) is None:
            labels = tuple(sorted(task.labels.items()))
            if labels not in placeable:
                ttl = config.node_ttl_s
                placeable[labels] = any(unavailable(task, n, now, ttl) is None for n in views.nodes.values())
            if placeable[labels]:
                continue  # queued behind busy slots
        key = (g, t, task.ready_since.isoformat())
        if key in already:
            continue
        already.add(key)
        reason = why(task, views, now, config)["headline"]
        out.append(
            ev.Unschedulable(
                event_id=f"unschedulable:{task_ref(g, t)}:{key[2]}",
                occurred_at=now,
                graph_id=g,
                task_id=t,
                reason=reason,
                since=task.ready_since,
            )
        )
    return out


def _ready_keys(views: Views) -> list[tuple[str, str]]:
    """The ready tasks' keys in order: from the views' index of them when they keep one (a scan
    costs the ready tasks, not every task)."""
    if views.ready is not None:
        return sorted(views.ready)
    return sorted(k for k, task in views.tasks.items() if task.state == "ready")

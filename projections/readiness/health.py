"""What the dispatch pause reads in the readiness view: decayed failure rates and recorded pauses.

Every run completion of an attempt that held its task adds one sample to its graph's
``GraphView.failures`` and to the overall ``Health.failures`` (KV ``health``): 1 for a failure
(as the quality threshold judges it), 0 for a success or partial, exponentially decayed over
event time with the half-life `FAILURE_HALF_LIFE_S` (`projections.decay`), so the mean is the
failure rate of recent completions. A preflight, a lost attempt or a stale result adds nothing.
``GraphPaused``/``GraphResumed`` set and clear the pause of their graph (``""``: of every graph)
and its guard sequence. A ``NodeScaleUpProposed`` opens a queueing episode (``Health.scale_up``);
the ready set becoming empty closes it (`projections.readiness.view.drained`). Whether a rate
pauses or resumes is the decider's (`orchestrator.decision.pause`); this module only folds the
facts it judges.
"""

from __future__ import annotations

import msgspec

from projections.decay import add
from projections.readiness.entries import HELD, Health, Pause, TaskView
from projections.readiness.view import HEALTH_KEY, ReadinessView
from schemas import actions as act
from schemas import events as ev
from schemas.subjects import graph_key

FAILURE_HALF_LIFE_S = 600.0  # ten minutes: "recent" completions


def learn(view: ReadinessView, before: TaskView | None, e: ev.TaskCompleted, seq: int) -> None:
    """One more sample of the failure rates, if ``e`` ends the attempt that held the task."""
    if e.phase != "run" or before is None or before.state not in HELD or before.preflight_state == "running":
        return
    if (before.node, before.attempt) != (e.node_id, e.attempt):
        return
    x = 1.0 if e.outcome == "failure" else 0.0
    at, replace = e.occurred_at, msgspec.structs.replace
    g = view.graphs.get(e.graph_id)
    if g is not None:
        view.graphs[e.graph_id] = replace(g, failures=add(g.failures, x, at, FAILURE_HALF_LIFE_S), seq=seq)
        view.touched.add(graph_key(e.graph_id))
    h = view.health or Health()
    view.health = replace(h, failures=add(h.failures, x, at, FAILURE_HALF_LIFE_S), seq=seq)
    view.touched.add(HEALTH_KEY)


def paused(view: ReadinessView, e: act.GraphPaused | act.GraphResumed, seq: int) -> None:
    """Set (a `GraphPaused`) or clear (a `GraphResumed`) the pause of a graph or of every graph."""
    is_pause = isinstance(e, act.GraphPaused)
    pause = Pause(since=e.occurred_at, by=e.by, reason=e.reason, rate=e.rate) if is_pause else None
    replace = msgspec.structs.replace
    if not e.graph_id:
        view.health = replace(view.health or Health(), pause=pause, pause_seq=seq, seq=seq)
        view.touched.add(HEALTH_KEY)
        return
    g = view.graphs.get(e.graph_id)
    if g is None:
        view.ignored.append(f"seq {seq}: {type(e).__name__} for unknown graph {e.graph_id}")
        return
    view.graphs[e.graph_id] = replace(g, pause=pause, pause_seq=seq, seq=seq)
    view.touched.add(graph_key(e.graph_id))


def scale_up(view: ReadinessView, e: act.NodeScaleUpProposed, seq: int) -> None:
    """A scale-up proposal opens its queueing episode: no other until the queue drains."""
    h = view.health or Health()
    since = e.queued_since or e.occurred_at
    view.health = msgspec.structs.replace(h, scale_up=since, scale_up_reason=e.reason, scale_up_seq=seq, seq=seq)
    view.touched.add(HEALTH_KEY)

"""The confidence view: predictions checked against outcomes, confidence, autonomy, staleness.

Keys (bucket ``view_confidence``): ``summary`` (`ConfidenceSummary`), ``prediction.<g>.<t>``
(`Prediction`, the task's latest attempt) and ``node.<id>`` (`NodeConfidence`).

**Predictions.** Every run dispatch predicts that its attempt succeeds by its expected finish,
``dispatched_at + expected_s``. ``expected_s`` is the dispatch's expected duration, else the
task's estimate, else the learned (decayed) mean duration of its type, else ``default_expected_s``
(60 s). Finishing a little late is not a miss: the deadline is
``dispatched_at + expected_s × deadline_factor + deadline_grace_s`` (1.5 and 10 s). The prediction
resolves as

- **hit**: the attempt completes with success or partial at or before the deadline;
- **miss**: it fails, finishes after the deadline, is lost, or the watchdog appends
  ``PredictionExpired`` (the deadline passed with no completion in the log);
- **void**: the task is cancelled or rejected first (says nothing about the prediction).

The first resolution in log order counts; later ones change nothing.

**Confidence** starts at ``initial`` (1.0) and moves by +``hit_step`` (0.01) per hit and
−``miss_step`` (0.05) per miss, clamped to [0, 1]: the seed article's rule; a steady miss rate
above 1/6 drags it down. Each node has its own confidence by the same rule.

**Autonomy level**: ``full`` when confidence ≥ ``full_at`` (0.8), ``cautious`` when ≥
``cautious_at`` (0.5), else ``supervised``. A person's ``AutonomyChanged`` (``by`` set) pins a
level (``full`` from a person clears the pin); the effective level is the more restrictive of
the derived and the pinned one; a person's ``full`` (``niyantra resume``) also raises confidence
to ``full_at`` (they vouch for the system: otherwise nothing would run under ``supervised`` and
confidence could never recover). An ``AutonomyChanged`` without ``by`` is informational.

The values of its keys (`Prediction`, `NodeConfidence`, `ConfidenceSummary`) are
`confidence_entries`; the fold's state (`ConfidenceView`) is `confidence_view`.

**Careful mode**: a `CarefulModeEntered` sets the summary's ``careful`` (since, confidence,
threshold, the agents' ``observe_interval_s``) and a `CarefulModeLeft` clears it; both set
``careful_seq``, the guard of the decider's next careful-mode event (`orchestrator.decision.careful`).

**Staleness**: ``as_of`` is the latest time of an event the view takes in (not of one it
ignores, such as ``TaskStarted``: that rewrites nothing); each node's staleness is
``as_of − last_seen`` (its last registration or observation), so it too is a function of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from projections.confidence.entries import Careful as Careful
from projections.confidence.entries import ConfidenceSummary as ConfidenceSummary
from projections.confidence.entries import NodeConfidence as NodeConfidence
from projections.confidence.entries import Prediction as Prediction
from projections.confidence.view import CONFIDENCE_PARAMS as CONFIDENCE_PARAMS
from projections.confidence.view import RESTRICTIVENESS as RESTRICTIVENESS
from projections.confidence.view import SUMMARY_KEY as SUMMARY_KEY
from projections.confidence.view import ConfidenceView as ConfidenceView
from projections.confidence.view import next_confidence, prediction_spans
from projections.confidence.view import prediction_key as prediction_key
from projections.decay import Decayed, add
from projections.feedback import judged_event
from projections.fold import rule_for
from schemas import actions as act
from schemas import events as ev
from schemas.ids import from_token
from schemas.records import AutonomyLevel


def _summary(view: ConfidenceView) -> ConfidenceSummary:
    assert view.summary is not None
    return view.summary


def _resolve(view: ConfidenceView, pr: Prediction, status: str, at: datetime, reason: str, seq: int) -> None:
    replace = msgspec.structs.replace
    actual = (at - pr.dispatched_at).total_seconds()
    view.predictions[(pr.graph_id, pr.task_id)] = replace(
        pr, status=status, resolved_at=at, actual_s=actual, reason=reason, seq=seq
    )
    view.touched.add(prediction_key(pr.graph_id, pr.task_id))
    s = _summary(view)
    if status == "void":
        view.summary = replace(s, voids=s.voids + 1, open=s.open - 1)
        return
    hit = status == "hit"
    conf = next_confidence(view, s.confidence, hit)
    derived = view.level(conf)
    view.summary = replace(
        s,
        confidence=conf,
        derived_level=derived,
        level=_effective(derived, s.pinned_level),
        hits=s.hits + hit,
        misses=s.misses + (not hit),
        open=s.open - 1,
    )
    n = view.nodes.get(pr.node_id) or NodeConfidence(node_id=pr.node_id, confidence=view.params["initial"])
    n = replace(
        n, confidence=next_confidence(view, n.confidence, hit), hits=n.hits + hit, misses=n.misses + (not hit), seq=seq
    )
    _put_node(view, n)


def _effective(derived: AutonomyLevel, pinned: AutonomyLevel | None) -> AutonomyLevel:
    if pinned is None:
        return derived
    return max(derived, pinned, key=lambda lv: RESTRICTIVENESS[lv])


def _put_node(view: ConfidenceView, n: NodeConfidence) -> None:
    view.nodes[n.node_id] = n
    view.touched.add(f"node.{n.node_id}")


def _expected(view: ConfidenceView, e: ev.TaskDispatched) -> float:
    if e.expected_duration_s:
        return e.expected_duration_s
    task_type, estimate = view.specs.get((e.graph_id, e.task_id), ("", None))
    if estimate:
        return estimate
    learned = view.durations.get(task_type)
    if learned is not None and learned.mean:
        return learned.mean
    return view.params["default_expected_s"]


def _predict(view: ConfidenceView, e: ev.TaskDispatched, seq: int) -> None:
    key = (e.graph_id, e.task_id)
    old = view.predictions.get(key)
    if old is not None and old.status == "open":
        _resolve(view, old, "miss", e.occurred_at, f"superseded by attempt {e.attempt}", seq)
    expected = _expected(view, e)
    to_finish, to_deadline = prediction_spans(view, expected)
    view.predictions[key] = Prediction(
        graph_id=e.graph_id,
        task_id=e.task_id,
        node_id=e.node_id,
        attempt=e.attempt,
        dispatched_at=e.occurred_at,
        expected_s=expected,
        expected_finish=e.occurred_at + to_finish,
        deadline=e.occurred_at + to_deadline,
        subject_seq=old.subject_seq if old is not None else 0,
        seq=seq,
    )
    view.touched.add(prediction_key(*key))
    s = _summary(view)
    view.summary = msgspec.structs.replace(s, open=s.open + 1)


def _open(view: ConfidenceView, graph_id: str, task_id: str, node_id: str, attempt: int) -> Prediction | None:
    pr = view.predictions.get((graph_id, task_id))
    if pr is None or pr.status != "open" or (pr.node_id, pr.attempt) != (node_id, attempt):
        return None
    return pr


_NO_SPEC: tuple[str, float | None] = ("", None)
_NO_DURATION = Decayed()


def _completed(view: ConfidenceView, e: ev.TaskCompleted, seq: int) -> None:
    if e.phase != "run":
        return
    if e.outcome != "failure":
        task_type = view.specs.get((e.graph_id, e.task_id), _NO_SPEC)[0]
        view.durations[task_type] = add(
            view.durations.get(task_type) or _NO_DURATION, e.duration_s, e.occurred_at, view.params["half_life_s"]
        )
    pr = _open(view, e.graph_id, e.task_id, e.node_id, e.attempt)
    if pr is None:
        return
    if e.outcome == "failure":
        _resolve(view, pr, "miss", e.occurred_at, f"failed: {e.error}"[:200], seq)
    elif e.occurred_at <= pr.deadline:
        _resolve(view, pr, "hit", e.occurred_at, "finished in time", seq)
    else:
        late = (e.occurred_at - pr.deadline).total_seconds()
        _resolve(view, pr, "miss", e.occurred_at, f"finished {late:.1f}s after the deadline", seq)


def _expired(view: ConfidenceView, e: ev.PredictionExpired, seq: int) -> None:
    key = (e.graph_id, e.task_id)
    pr = view.predictions.get(key)
    if pr is None:
        view.ignored.append(f"seq {seq}: PredictionExpired for {e.graph_id}/{e.task_id} without a prediction")
        return
    pr = msgspec.structs.replace(pr, subject_seq=seq, seq=seq)  # the watchdog's guard follows this subject
    view.predictions[key] = pr
    view.touched.add(prediction_key(*key))
    if pr.status == "open" and (pr.node_id, pr.attempt) == (e.node_id, e.attempt):
        _resolve(view, pr, "miss", e.occurred_at, "expired: no completion by the deadline", seq)


def _void_graph(view: ConfidenceView, graph_id: str, at: datetime, seq: int) -> None:
    for (g, _), pr in sorted(view.predictions.items()):
        if g == graph_id and pr.status == "open":
            _resolve(view, pr, "void", at, "graph cancelled", seq)


def _seen(view: ConfidenceView, node_id: str, at: datetime, seq: int) -> None:
    n = view.nodes.get(node_id) or NodeConfidence(node_id=node_id, confidence=view.params["initial"])
    _put_node(view, msgspec.structs.replace(n, last_seen=at, seq=seq))


def _pin(view: ConfidenceView, e: ev.AutonomyChanged) -> None:
    if not e.by:
        return  # informational: the derived level is already in the view
    s = _summary(view)
    pinned: AutonomyLevel | None = None if e.level == "full" else e.level
    if pinned is None:  # a person resumes: they vouch for the system, confidence comes back to the full threshold
        c = max(s.confidence, view.params["full_at"])
        s = msgspec.structs.replace(s, confidence=c, derived_level=view.level(c))
    view.summary = msgspec.structs.replace(
        s, pinned_level=pinned, pinned_by=e.by if pinned else "", level=_effective(s.derived_level, pinned)
    )


def _careful(view: ConfidenceView, e: act.CarefulModeEntered | act.CarefulModeLeft, seq: int) -> None:
    """Careful mode starts (`CarefulModeEntered`) or ends (`CarefulModeLeft`); its guard moves."""
    careful = None
    if isinstance(e, act.CarefulModeEntered):
        careful = Careful(since=e.occurred_at, confidence=e.confidence, threshold=e.threshold,
                          observe_interval_s=e.observe_interval_s, reason=e.reason)  # fmt: skip
    view.summary = msgspec.structs.replace(_summary(view), careful=careful, careful_seq=seq)


def _ended(view: ConfidenceView, e: ev.TaskLost | ev.TaskCancelled | ev.TaskRejected, seq: int) -> None:
    if isinstance(e, ev.TaskLost):
        pr = _open(view, e.graph_id, e.task_id, e.node_id, e.attempt)
        if pr is not None:
            _resolve(view, pr, "miss", e.occurred_at, f"lost: {e.reason}", seq)
        return
    pr = view.predictions.get((e.graph_id, e.task_id))
    if pr is not None and pr.status == "open":
        _resolve(view, pr, "void", e.occurred_at, "task cancelled", seq)


def _specs(view: ConfidenceView, e: ev.GraphSubmitted | ev.GraphTasksAdded | ev.TasksGenerated) -> None:
    """Type and estimate of each task of a complete graph, or of tasks a follow-up rule generated."""
    if isinstance(e, ev.TasksGenerated):
        for x in e.generated:
            view.specs.setdefault((e.graph_id, x.spec.id), (x.spec.type, x.spec.estimate_s))
        return
    whole = view.assembly.add(e)
    if whole is not None:
        for t in whole.tasks:
            view.specs.setdefault((whole.graph_id, t.id), (t.type, t.estimate_s))


def _dispatched(view: ConfidenceView, e: ev.TaskDispatched, seq: int) -> None:
    if e.phase == "run":
        _predict(view, e, seq)


def _judged(view: ConfidenceView, e: ev.TaskCompleted, seq: int) -> None:
    view.quality, judged = judged_event(view.quality, e)  # the quality threshold's verdict
    _completed(view, judged, seq)


def _graph_cancelled(view: ConfidenceView, e: ev.GraphCancelled, seq: int) -> None:
    _void_graph(view, e.graph_id, e.occurred_at, seq)


def _node_seen(view: ConfidenceView, e: ev.NodeRegistered | ev.NodeObserved, seq: int) -> None:
    _seen(view, e.node_id, e.occurred_at, seq)


def _nothing(view: ConfidenceView, e: ev.AnyEvent, seq: int) -> None:
    pass


# What each event type does to the view, looked up by the exact type (one dict lookup instead
# of a chain of class patterns; a subclass finds its base's rule through `rule_for`).
_RULES: dict[type, Callable[[ConfidenceView, Any, int], None]] = {
    ev.GraphSubmitted: lambda view, e, seq: _specs(view, e),
    ev.GraphTasksAdded: lambda view, e, seq: _specs(view, e),
    ev.TasksGenerated: lambda view, e, seq: _specs(view, e),
    ev.TaskDispatched: _dispatched,
    ev.TaskCompleted: _judged,
    ev.TaskLost: _ended,
    ev.TaskCancelled: _ended,
    ev.TaskRejected: _ended,
    ev.GraphCancelled: _graph_cancelled,
    ev.PredictionExpired: _expired,
    ev.NodeRegistered: _node_seen,
    ev.NodeObserved: _node_seen,
    ev.AutonomyChanged: lambda view, e, seq: _pin(view, e),
    ev.TaskStarted: _nothing,
    ev.TaskApproved: _nothing,
    ev.NodeLost: _nothing,
    ev.NodeDrainRequested: _nothing,
    ev.Unschedulable: _nothing,
    act.Alert: _nothing,
    ev.GenerationLimitReached: _nothing,
    ev.BacklogItemTaken: _nothing,
    ev.TaskCacheHit: _nothing,  # no node ran anything: nothing to learn about nodes or predictions
    ev.CacheEntryRevoked: _nothing,
    act.GraphPaused: _nothing,
    act.GraphResumed: _nothing,
    act.CarefulModeEntered: _careful,
    act.CarefulModeLeft: _careful,
    act.NodeScaleDownProposed: _nothing,
    act.NodeScaleUpProposed: _nothing,
}


def evolve_confidence(view: ConfidenceView, event: ev.AnyEvent, seq: int) -> ConfidenceView:
    """Apply one event (at stream sequence ``seq``) to the confidence view.

    The summary reflects every event the view takes in: its ``seq`` is the last of them and
    ``as_of`` their latest time; both and the staleness are rendered when the summary is written
    (`summary_value`). An event the view ignores (``TaskStarted``, ...) moves only ``view.seq``
    (the checkpoint), so it rewrites no key.
    """
    if seq <= view.seq:
        return view
    rule = _RULES.get(type(event)) or rule_for(_RULES, event, "confidence")
    if rule is _nothing:
        view.seq = seq
        return view
    rule(view, event, seq)
    if view.as_of is None or event.occurred_at > view.as_of:
        view.as_of = event.occurred_at
    view.touched.add(SUMMARY_KEY)
    view.seq = view.applied_seq = seq
    return view


def summary_value(view: ConfidenceView) -> ConfidenceSummary:
    """The summary as of the view's last event, with each node's staleness at that time."""
    as_of = view.as_of
    staleness = (
        {n: round((as_of - v.last_seen).total_seconds(), 6) for n, v in sorted(view.nodes.items()) if v.last_seen}
        if as_of is not None
        else {}
    )
    q = view.quality
    return msgspec.structs.replace(
        _summary(view),
        as_of=as_of,
        staleness_s=staleness,
        seq=view.applied_seq,
        quality_threshold=q.threshold,
        quality_average=round(q.average, 6) if q.average is not None else None,
    )


def confidence_values(view: ConfidenceView, keys: set[str]) -> dict[str, msgspec.Struct]:
    """The current value of each KV key in ``keys``."""
    out: dict[str, msgspec.Struct] = {}
    for k in keys:
        kind, _, rest = k.partition(".")
        if kind == SUMMARY_KEY:
            out[k] = summary_value(view)
        elif kind == "node":
            out[k] = view.nodes[rest]
        else:
            g, _, t = rest.partition(".")
            out[k] = view.predictions[(from_token(g), from_token(t))]
    return out


def confidence_keys(view: ConfidenceView) -> set[str]:
    """Every KV key the view holds (for a rebuild)."""
    keys = {prediction_key(g, t) for g, t in view.predictions} | {f"node.{n}" for n in view.nodes}
    return keys | ({SUMMARY_KEY} if view.seq else set())


def params_of(view: ConfidenceView) -> Mapping[str, float]:
    """The parameters the view was built with."""
    return view.params

"""The watchdog's pure core: which clock facts are due at ``now``, and their guards."""

from __future__ import annotations

from orchestrator.processes.watchdog import WatchdogConfig, WatchViews, watch
from projections.confidence.fold import ConfidenceView, evolve_confidence
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import at, dispatched, observed, registered, started, submitted

CONFIG = WatchdogConfig(observe_interval_s=5, missed=3)


def views(*events) -> WatchViews:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    c = project(evolve_confidence, ConfidenceView(), pairs)
    return WatchViews(nodes=n.nodes, tasks=r.tasks, predictions=c.predictions)


def names(emits):
    return [(type(e.event).__name__, e.expected_seq) for e in emits]


G = submitted("g", ("a", ()), ("b", ()))


def test_a_node_is_lost_after_its_lease_and_not_before():
    v = views(registered("n1", t=0), observed("n1", t=10))
    assert watch(v, at(25), CONFIG) == []  # 15 s silent = the lease: still fine
    (e,) = watch(v, at(25.1), CONFIG)
    assert names([e]) == [("NodeLost", 2)] and e.event.event_id == "node-lost:n1:2"
    assert e.event.last_seen == at(10) and "missed 3 observations" in e.event.reason


def test_the_nodes_own_interval_sets_its_lease():
    fast = ev.NodeRegistered(event_id="r", occurred_at=at(0), node_id="n1", slots=1, observe_interval_s=1.0)
    assert names(watch(views(fast), at(3.5), CONFIG)) == [("NodeLost", 1)]


def test_attempts_on_a_lost_node_are_lost_guarded_by_the_tasks_sequence():
    node_lost = ev.NodeLost(event_id="nl", occurred_at=at(30), node_id="n1", reason="silent")
    v = views(
        G,
        registered("n1"),
        registered("n2", t=100),
        dispatched("g", "a", "n1"),
        started("g", "a", "n1"),
        dispatched("g", "b", "n2"),
        node_lost,
    )
    emits = watch(v, at(31), CONFIG)
    lost = [e for e in emits if isinstance(e.event, ev.TaskLost)]
    assert [(e.event.task_id, e.event.attempt, e.expected_seq, e.version) for e in lost] == [("a", 1, 5, 3)]
    assert ("NodeLost", 1) not in names(emits)  # already lost: not again


def test_an_open_prediction_past_its_deadline_expires():
    v = views(G, registered("n1", t=100), dispatched("g", "a", "n1", t=0))  # deadline 0 + 60 × 1.5 + 10 = 100 s
    assert watch(v, at(100), CONFIG) == []
    (e,) = watch(v, at(100.5), CONFIG)
    assert names([e]) == [("PredictionExpired", 0)] and e.event.deadline == at(100)


class _Values:
    """What `OpenPredictions` reads of a mirror: its values and its hook."""

    def __init__(self, values=None):
        self.values = dict(values or {})
        self.on_value = None


def test_the_open_predictions_index_follows_the_confidence_views_writes():
    from orchestrator.processes.watchdog import OpenPredictions
    from projections.confidence.fold import confidence_values

    done = ev.TaskCompleted(
        event_id="c", occurred_at=at(5), graph_id="g", task_id="a", node_id="n1", attempt=1, outcome="success"
    )
    events = [G, registered("n1"), dispatched("g", "a", "n1", t=0), dispatched("g", "b", "n1", t=1), done]
    view, first = ConfidenceView(), _Values()
    index = OpenPredictions(first)
    for seq, e in enumerate(events, 1):
        view = evolve_confidence(view, e, seq)
        for key, value in confidence_values(view, {k for k in view.touched if k.startswith("prediction.")}).items():
            index(key, first.values.get(key), value)
            first.values[key] = value
        view.touched = set()
        assert index.open == {k: p for k, p in view.predictions.items() if p.status == "open"}
    assert set(index.open) == {("g", "b")}
    later = OpenPredictions(_Values(first.values))  # a watchdog started later: from the loaded values
    assert later.open == index.open
    every = WatchViews(nodes={}, tasks={}, predictions=view.predictions)
    only_open = WatchViews(nodes={}, tasks={}, predictions=index.open)
    assert watch(every, at(200), CONFIG) == watch(only_open, at(200), CONFIG)
    assert names(watch(every, at(200), CONFIG)) == [("PredictionExpired", 0)]

"""The node-scores view, event by event."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.decay import Decayed, add
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import T0, at, completed, dispatched, graph, lost, observed, registered, spec


def fold(*events):
    return project(evolve_node_scores, NodeScoresView(), list(enumerate(events, 1)))


def test_registration_observation_and_active_attempts():
    observed = ev.NodeObserved(
        event_id="o",
        occurred_at=at(5),
        node_id="n1",
        cpu_percent=12.5,
        memory_percent=40.0,
        load1=0.5,
        running_tasks=1,
    )
    view = fold(
        registered("n1", slots=3, os="linux"),
        dispatched("g", "a", "n1"),
        dispatched("g", "b", "n1"),
        observed,
    )
    n = view.nodes["n1"]
    assert (n.slots, n.labels, n.active, n.cpu_percent, n.last_seen) == (
        3,
        {"os": "linux"},
        ("g/a#1", "g/b#1"),
        12.5,
        at(5),
    )


def test_completion_frees_the_slot_and_counts_the_outcome():
    view = fold(
        registered("n1"),
        dispatched("g", "a", "n1"),
        dispatched("g", "b", "n1"),
        completed("g", "a", "n1"),
        completed("g", "b", "n1", "failure"),
    )
    n = view.nodes["n1"]
    assert (n.active, n.completed, n.failed) == ((), 1, 1)


def test_rebuild_equals_incremental():
    events = [
        registered("n1"),
        registered("n2"),
        dispatched("g", "a", "n2"),
        completed("g", "a", "n2"),
    ]
    inc = NodeScoresView()
    for seq, e in enumerate(events, 1):
        inc = evolve_node_scores(inc, e, seq)
        inc.touched.clear()
    assert fold(*events).nodes == inc.nodes


# --- liveness facts, learning -------------------------------------------------------------


def run_completed(task, node, outcome, duration, t, attempt=1, expected=None):
    return ev.TaskCompleted(
        event_id=f"c:{task}:{attempt}",
        occurred_at=at(t),
        graph_id="g",
        task_id=task,
        node_id=node,
        attempt=attempt,
        outcome=outcome,
        duration_s=duration,
        expected_duration_s=expected,
    )


def test_lost_drain_and_a_new_lease():
    node_lost = ev.NodeLost(event_id="nl", occurred_at=at(30), node_id="n1", reason="missed 3 observations")
    drain = ev.NodeDrainRequested(event_id="dr", occurred_at=at(40), node_id="n2", by="ana", reason="upgrade")
    view = fold(registered("n1"), registered("n2"), observed("n1", t=5), node_lost, drain)
    n1, n2 = view.nodes["n1"], view.nodes["n2"]
    assert (n1.lost, n1.lost_at, n1.lost_count, n1.subject_seq, n1.observations) == (True, at(30), 1, 4, 1)
    assert (n2.draining, n2.drain_reason) == (True, "by ana: upgrade")
    back = evolve_node_scores(view, observed("n1", t=50), 6)
    assert (back.nodes["n1"].lost, back.nodes["n1"].subject_seq) == (False, 6)


def test_subject_seq_counts_only_the_nodes_own_events():
    view = fold(registered("n1"), dispatched("g", "a", "n1"), completed("g", "a", "n1"))
    assert (view.nodes["n1"].seq, view.nodes["n1"].subject_seq) == (3, 1)


def test_efficiency_success_and_type_estimates():
    g = graph("g", spec("a", type="compile", estimate_s=10.0), spec("b", type="compile"), spec("c", type="compile"))
    view = fold(
        g,
        registered("n1"),
        dispatched("g", "a", "n1"),
        run_completed("a", "n1", "success", 5.0, 10),  # estimate 10 s, took 5: efficiency 2
        dispatched("g", "b", "n1"),
        run_completed("b", "n1", "failure", 1.0, 10),  # failure: success 0, no efficiency
        dispatched("g", "c", "n1"),
        lost("g", "c", "n1", t=10),  # lost: success 0
    )
    score = view.nodes["n1"].scores["compile"]
    assert (score.efficiency.n, score.efficiency.mean) == (1, 2.0)
    assert (score.success.n, score.success.mean) == (3, 1 / 3)
    est = view.types["type.compile"]
    assert (est.type, est.duration.n, est.duration.mean, est.duration.std) == ("compile", 1, 5.0, 0.0)
    assert view.nodes["n1"].active == ()


def test_the_learned_type_mean_is_the_expectation_when_nothing_else_is_known():
    g = graph("g", spec("a", type="t"), spec("b", type="t"))
    view = fold(
        g,
        dispatched("g", "a", "n1"),
        run_completed("a", "n1", "success", 4.0, 10),
        dispatched("g", "b", "n1"),
        run_completed("b", "n1", "success", 8.0, 10),
    )
    assert view.nodes["n1"].scores["t"].efficiency.mean == 0.5  # only b had an expectation: 4/8


def test_preflight_and_stale_results_teach_nothing():
    view = fold(
        graph("g", spec("a", type="t")),
        dispatched("g", "a", "n1"),
        lost("g", "a", "n1"),
        run_completed("a", "n1", "success", 4.0, 10),  # the lost attempt's late result
    )
    assert view.nodes["n1"].scores["t"].success.n == 1 and "type.t" not in view.types
    assert "does not hold it" in view.ignored[-1]


def test_half_life_halves_the_weight_of_old_samples():
    view = NodeScoresView(half_life_s=60.0)
    events = [
        graph("g", spec("a", type="t"), spec("b", type="t")),
        dispatched("g", "a", "n1"),
        run_completed("a", "n1", "success", 10.0, 0),
        dispatched("g", "b", "n1"),
        run_completed("b", "n1", "success", 40.0, 60),  # one half-life later
    ]
    view = project(evolve_node_scores, view, list(enumerate(events, 1)))
    d = view.types["type.t"].duration
    assert math.isclose(d.mean, (0.5 * 10 + 40) / 1.5) and math.isclose(d.w, 1.5)


samples = st.lists(
    st.tuples(st.floats(0, 86_400, allow_nan=False), st.floats(0, 1000, allow_nan=False)), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(samples, st.floats(1, 100_000))
def test_decayed_statistics_match_the_closed_form(xs, half_life):
    d = Decayed()
    xs = [(T0 + timedelta(seconds=t), x) for t, x in xs]  # event times have microsecond resolution
    for t, x in xs:
        d = add(d, x, t, half_life)
    latest = max(t for t, _ in xs)
    w = [2 ** (-(latest - t).total_seconds() / half_life) for t, _ in xs]
    mean = sum(wi * x for wi, (_, x) in zip(w, xs, strict=True)) / sum(w)
    var = sum(wi * x * x for wi, (_, x) in zip(w, xs, strict=True)) / sum(w) - mean * mean
    assert d.n == len(xs) and d.at == latest
    assert math.isclose(d.w, sum(w), rel_tol=1e-9)
    assert math.isclose(d.mean, mean, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(d.std, math.sqrt(max(var, 0.0)), rel_tol=1e-6, abs_tol=1e-3)

"""The confidence view: predictions resolved by completions, losses and deadlines; the rule; autonomy."""

from __future__ import annotations

import pytest

from projections.confidence.fold import ConfidenceView, evolve_confidence, summary_value
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import at, graph, lost, observed, registered, spec

G = graph("g", spec("a", estimate_s=10.0), spec("b", type="t"), spec("c"))


def fold(*events, **params):
    return project(evolve_confidence, ConfidenceView(params=params), list(enumerate(events, 1)))


def disp(task, t=0.0, expected=None, attempt=1, node="n1"):
    return ev.TaskDispatched(
        event_id=f"d{task}{attempt}",
        occurred_at=at(t),
        graph_id="g",
        task_id=task,
        node_id=node,
        attempt=attempt,
        command="x",
        expected_duration_s=expected,
    )


def done(task, t, outcome="success", attempt=1, node="n1", duration=1.0):
    return ev.TaskCompleted(
        event_id=f"c{task}{attempt}",
        occurred_at=at(t),
        graph_id="g",
        task_id=task,
        node_id=node,
        attempt=attempt,
        outcome=outcome,
        duration_s=duration,
    )


def expired(task, t, attempt=1):
    return ev.PredictionExpired(
        event_id=f"x{task}",
        occurred_at=at(t),
        graph_id="g",
        task_id=task,
        node_id="n1",
        attempt=attempt,
        deadline=at(t),
    )


@pytest.mark.parametrize(
    ("events", "status", "reason"),
    [
        ((disp("a"), done("a", 25)), "hit", "finished in time"),  # deadline 10 × 1.5 + 10 = 25 s
        ((disp("a"), done("a", 26)), "miss", "finished 1.0s after the deadline"),
        ((disp("a"), done("a", 5, "failure")), "miss", "failed: "),
        ((disp("a"), lost("g", "a", "n1")), "miss", "lost: node lost"),
        ((disp("a"), expired("a", 30), done("a", 31)), "miss", "expired: no completion by the deadline"),
        ((disp("a"), done("a", 5), expired("a", 30)), "hit", "finished in time"),  # first resolution counts
        (
            (disp("a"), ev.TaskCancelled(event_id="k", occurred_at=at(1), graph_id="g", task_id="a", by="ana")),
            "void",
            "task cancelled",
        ),
        ((disp("a"), done("a", 5, attempt=2)), "open", ""),  # another attempt's result resolves nothing
    ],
)
def test_resolution(events, status, reason):
    p = fold(G, *events).predictions[("g", "a")]
    assert (p.status, p.reason[: len(reason)]) == (status, reason)


def test_expected_duration_comes_from_dispatch_estimate_learned_type_or_default():
    view = fold(G, disp("a", expected=4.0), disp("c"), disp("b"), done("b", 8, duration=8.0), disp("b", 9, attempt=2))
    pr = view.predictions
    assert (pr[("g", "a")].expected_s, pr[("g", "c")].expected_s, pr[("g", "b")].expected_s) == (4.0, 60.0, 8.0)
    assert fold(G, disp("a")).predictions[("g", "a")].expected_s == 10.0


def test_the_rule_and_the_autonomy_levels():
    hits = [e for i in range(3) for e in (disp("a", attempt=i + 1), done("a", 1, attempt=i + 1))]
    s = fold(G, *hits, initial=0.5).summary
    assert (s.confidence, s.hits, s.level) == (0.53, 3, "cautious")
    misses = [e for i in range(5) for e in (disp("a", attempt=i + 1), done("a", 1, "failure", attempt=i + 1))]
    s = fold(G, *misses).summary
    assert (s.confidence, s.misses, s.level) == (0.75, 5, "cautious")
    s = fold(G, *misses, full_at=0.7).summary
    assert s.level == "full"
    s = fold(G, *(misses * 2)[:20], initial=0.1).summary  # clamped at 0
    assert (s.confidence, s.level) == (0.0, "supervised")


def test_a_person_pins_a_more_restrictive_level_and_full_releases_it():
    pin = ev.AutonomyChanged(event_id="p", occurred_at=at(1), level="supervised", by="ana", reason="incident")
    release = ev.AutonomyChanged(event_id="q", occurred_at=at(2), level="full", by="ana", reason="ok")
    s = fold(G, pin).summary
    assert (s.level, s.derived_level, s.pinned_by) == ("supervised", "full", "ana")
    assert fold(G, pin, release).summary.level == "full"


def test_a_person_resuming_raises_confidence_to_the_full_threshold():
    misses = [e for i in range(12) for e in (disp("a", attempt=i + 1), done("a", 1, "failure", attempt=i + 1))]
    low = fold(G, *misses).summary
    assert (low.confidence, low.level) == (0.4, "supervised")  # nothing would ever run to recover
    resume = ev.AutonomyChanged(event_id="r", occurred_at=at(2), level="full", by="ana", reason="fixed the cause")
    s = fold(G, *misses, resume).summary
    assert (s.confidence, s.level, s.pinned_level) == (0.8, "full", None)
    info = ev.AutonomyChanged(event_id="i", occurred_at=at(2), level="full", reason="informational")
    assert fold(G, *misses, info).summary.level == "supervised"


def test_staleness_is_measured_against_the_logs_own_time():
    s = summary_value(
        fold(
            registered("n1", t=0),
            registered("n2", t=0),
            observed("n1", t=50),
            observed("n2", t=20),
            observed("n1", t=80),
        )
    )
    assert s.staleness_s == {"n1": 0.0, "n2": 60.0} and s.as_of == at(80)
    n = fold(G, disp("a"), done("a", 5), disp("b", node="n2"), done("b", 5, "failure", node="n2")).nodes
    assert (n["n1"].confidence, n["n2"].confidence, n["n2"].misses) == (1.0, 0.95, 1)

"""The readiness view, event by event."""

from __future__ import annotations

import pytest

from projections.readiness import ReadinessView, evolve_readiness
from projections.runner import project
from tests.unit.builders import completed, dispatched, registered, started, submitted

DIAMOND = submitted("g", ("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")))


def fold(*events):
    return project(evolve_readiness, ReadinessView(), list(enumerate(events, 1)))


def states(view):
    return {t: v.state for (_, t), v in sorted(view.tasks.items())}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ((DIAMOND,), {"a": "ready", "b": "pending", "c": "pending", "d": "pending"}),
        (
            (DIAMOND, dispatched("g", "a", "n1")),
            {"a": "dispatched", "b": "pending", "c": "pending", "d": "pending"},
        ),
        (
            (DIAMOND, dispatched("g", "a", "n1"), started("g", "a", "n1")),
            {"a": "running", "b": "pending", "c": "pending", "d": "pending"},
        ),
        (
            (
                DIAMOND,
                dispatched("g", "a", "n1"),
                started("g", "a", "n1"),
                completed("g", "a", "n1"),
            ),
            {"a": "succeeded", "b": "ready", "c": "ready", "d": "pending"},
        ),
        (
            (DIAMOND, completed("g", "a", "n1"), completed("g", "b", "n1")),
            {"a": "succeeded", "b": "succeeded", "c": "ready", "d": "pending"},
        ),
        (
            (
                DIAMOND,
                completed("g", "a", "n1"),
                completed("g", "b", "n1"),
                completed("g", "c", "n1"),
            ),
            {"a": "succeeded", "b": "succeeded", "c": "succeeded", "d": "ready"},
        ),
        (
            (DIAMOND, completed("g", "a", "n1", "failure")),
            {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "cancelled"},
        ),
        (
            (DIAMOND, completed("g", "a", "n1", "partial")),
            {"a": "succeeded", "b": "ready", "c": "ready", "d": "pending"},
        ),
    ],
)
def test_states(events, expected):
    assert states(fold(*events)) == expected


def test_waiting_for_shrinks_as_dependencies_succeed():
    view = fold(DIAMOND, completed("g", "a", "n"), completed("g", "b", "n"))
    assert view.tasks[("g", "d")].waiting_for == ("c",)
    assert view.tasks[("g", "a")].dependents == ("b", "c")


def test_a_failed_attempt_with_attempts_left_is_ready_again():
    view = project(
        evolve_readiness,
        ReadinessView(),
        enumerate(
            [
                submitted("g", ("a", ()), max_attempts=2),
                dispatched("g", "a", "n1"),
                completed("g", "a", "n1", "failure"),
            ],
            1,
        ),
    )
    a = view.tasks[("g", "a")]
    assert (a.state, a.attempt, a.version, a.last_seq) == ("ready", 1, 2, 3)


def test_graph_totals_and_done():
    view = fold(DIAMOND, completed("g", "a", "n1", "failure"))
    g = view.graphs["g"]
    assert (g.total, g.counts["failed"], g.counts["cancelled"], g.done) == (4, 1, 3, True)
    assert not fold(DIAMOND).graphs["g"].done


def test_task_version_and_last_seq_track_the_task_aggregate():
    view = fold(DIAMOND, registered("n1"), dispatched("g", "a", "n1"), started("g", "a", "n1"))
    a = view.tasks[("g", "a")]
    assert (a.version, a.last_seq, a.seq) == (2, 4, 4)


def test_touched_holds_exactly_the_changed_keys():
    view = fold(DIAMOND, completed("g", "a", "n"))
    view.touched.clear()
    view = evolve_readiness(view, completed("g", "b", "n"), 3)
    assert view.touched == {"task.g.b", "task.g.d", "graph.g"}  # b, its dependent, the totals
    view.touched.clear()
    view = evolve_readiness(view, started("g", "c", "n"), 4)
    assert view.touched == {"task.g.c", "graph.g"}


def test_redelivered_events_are_skipped_and_orphans_recorded():
    view = fold(DIAMOND, completed("g", "a", "n"))
    again = evolve_readiness(view, completed("g", "a", "n", "failure"), 2)
    assert again.tasks[("g", "a")].state == "succeeded"
    view = evolve_readiness(view, dispatched("other", "x", "n"), 3)
    assert view.ignored and "unknown task other/x" in view.ignored[-1]


def test_a_second_submit_of_the_same_graph_is_ignored():
    view = fold(DIAMOND, completed("g", "a", "n"), DIAMOND)
    assert states(view)["a"] == "succeeded" and "submitted again" in view.ignored[-1]


def test_rebuild_equals_incremental():
    events = [
        DIAMOND,
        registered("n1"),
        dispatched("g", "a", "n1"),
        started("g", "a", "n1"),
        completed("g", "a", "n1"),
        dispatched("g", "b", "n1"),
        completed("g", "b", "n1", "failure"),
    ]
    incremental = ReadinessView()
    for seq, e in enumerate(events, 1):
        incremental = evolve_readiness(incremental, e, seq)
        incremental.touched.clear()
    rebuilt = fold(*events)
    assert rebuilt.tasks == incremental.tasks and rebuilt.graphs == incremental.graphs

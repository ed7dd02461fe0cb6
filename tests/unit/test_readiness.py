"""The readiness view, event by event."""

from __future__ import annotations

import pytest

from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import (
    T0,
    at,
    completed,
    dispatched,
    graph,
    lost,
    ran,
    registered,
    spec,
    started,
    submitted,
)

DIAMOND = submitted("g", ("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")))


def flat(events):
    out = []
    for e in events:
        out.extend(e if isinstance(e, list) else [e])
    return out


def fold(*events):
    return project(evolve_readiness, ReadinessView(), list(enumerate(flat(events), 1)))


def states(view):
    return {t: v.state for (_, t), v in sorted(view.tasks.items())}


def human(cls, task, by="ana", t=9.0, graph_id="g"):
    return cls(event_id=f"h:{cls.__name__}:{task}", occurred_at=at(t), graph_id=graph_id, task_id=task, by=by)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ((DIAMOND,), {"a": "ready", "b": "pending", "c": "pending", "d": "pending"}),
        ((DIAMOND, dispatched("g", "a", "n1")), {"a": "dispatched", "b": "pending", "c": "pending", "d": "pending"}),
        (
            (DIAMOND, dispatched("g", "a", "n1"), started("g", "a", "n1")),
            {"a": "running", "b": "pending", "c": "pending", "d": "pending"},
        ),
        (
            (DIAMOND, dispatched("g", "a", "n1"), started("g", "a", "n1"), completed("g", "a", "n1")),
            {"a": "succeeded", "b": "ready", "c": "ready", "d": "pending"},
        ),
        (
            (DIAMOND, ran("g", "a", "n1"), ran("g", "b", "n1")),
            {"a": "succeeded", "b": "succeeded", "c": "ready", "d": "pending"},
        ),
        (
            (DIAMOND, ran("g", "a", "n1"), ran("g", "b", "n1"), ran("g", "c", "n1")),
            {"a": "succeeded", "b": "succeeded", "c": "succeeded", "d": "ready"},
        ),
        (
            (DIAMOND, ran("g", "a", "n1", "failure")),
            {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "cancelled"},
        ),
        ((DIAMOND, ran("g", "a", "n1", "partial")), {"a": "succeeded", "b": "ready", "c": "ready", "d": "pending"}),
        # a lost attempt is ready again; a result from the lost attempt changes nothing
        (
            (DIAMOND, dispatched("g", "a", "n1"), lost("g", "a", "n1")),
            {"a": "ready", "b": "pending", "c": "pending", "d": "pending"},
        ),
        (
            (DIAMOND, dispatched("g", "a", "n1"), lost("g", "a", "n1"), completed("g", "a", "n1")),
            {"a": "ready", "b": "pending", "c": "pending", "d": "pending"},
        ),
        # the third loss quarantines the task as failed (poison), downstream cancelled
        (
            (
                DIAMOND,
                dispatched("g", "a", "n1", 1),
                lost("g", "a", "n1", 1),
                dispatched("g", "a", "n2", 2),
                lost("g", "a", "n2", 2),
                dispatched("g", "a", "n3", 3),
                lost("g", "a", "n3", 3),
            ),
            {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "cancelled"},
        ),
        # cancel: the task and everything downstream; a finished task stays finished
        ((DIAMOND, human(ev.TaskCancelled, "b")), {"a": "ready", "b": "cancelled", "c": "pending", "d": "cancelled"}),
        (
            (DIAMOND, ran("g", "a", "n1"), human(ev.TaskCancelled, "a")),
            {"a": "succeeded", "b": "ready", "c": "ready", "d": "pending"},
        ),
        (
            (DIAMOND, ran("g", "a", "n1"), ev.GraphCancelled(event_id="gc", occurred_at=at(9), graph_id="g", by="ana")),
            {"a": "succeeded", "b": "cancelled", "c": "cancelled", "d": "cancelled"},
        ),
    ],
)
def test_states(events, expected):
    assert states(fold(*events)) == expected


def test_waiting_for_shrinks_as_dependencies_succeed():
    view = fold(DIAMOND, ran("g", "a", "n"), ran("g", "b", "n"))
    assert view.tasks[("g", "d")].waiting_for == ("c",)
    assert view.tasks[("g", "a")].dependents == ("b", "c")


def test_a_failed_attempt_with_attempts_left_is_ready_again():
    view = fold(submitted("g", ("a", ()), max_attempts=2), ran("g", "a", "n1", "failure"))
    a = view.tasks[("g", "a")]
    assert (a.state, a.attempt, a.version, a.last_seq) == ("ready", 1, 2, 3)


def test_a_failure_marked_not_retryable_fails_at_once():
    no_retry = ev.TaskCompleted(
        event_id="c",
        occurred_at=at(3),
        graph_id="g",
        task_id="a",
        node_id="n1",
        attempt=1,
        outcome="failure",
        retryable=False,
        error="bad config",
    )
    view = fold(submitted("g", ("a", ()), max_attempts=3), dispatched("g", "a", "n1"), no_retry)
    assert view.tasks[("g", "a")].state == "failed"


def test_a_lost_attempt_is_ready_again_as_a_new_attempt_and_counts_the_loss():
    view = fold(DIAMOND, dispatched("g", "a", "n1"), started("g", "a", "n1"), lost("g", "a", "n1", t=7))
    a = view.tasks[("g", "a")]
    assert (a.state, a.attempt, a.lost, a.ready_since, a.last_seq, a.version) == ("ready", 1, 1, at(7), 4, 3)
    assert "lost on n1" in a.reason


def test_quarantine_names_the_reason():
    events = [DIAMOND]
    for i in (1, 2, 3):
        events += [dispatched("g", "a", f"n{i}", i), lost("g", "a", f"n{i}", i)]
    a = fold(*events).tasks[("g", "a")]
    assert a.state == "failed" and a.reason.startswith("quarantined: lost 3 times")


def test_a_stale_result_advances_only_the_sequence():
    view = fold(DIAMOND, dispatched("g", "a", "n1"), lost("g", "a", "n1"), dispatched("g", "a", "n2", 2))
    before = view.tasks[("g", "a")]
    view = evolve_readiness(view, completed("g", "a", "n1", attempt=1), 5)
    after = view.tasks[("g", "a")]
    assert (after.state, after.node, after.attempt) == ("dispatched", "n2", 2)
    assert (after.last_seq, after.version) == (5, before.version + 1)  # the decider's guard stays exact
    assert "ignored" in view.ignored[-1]


def test_tier3_waits_for_approval_and_rejection_cancels_downstream():
    g = graph("g", spec("a"), spec("b", "a", tier=3), spec("c", "b"))
    view = fold(g, ran("g", "a", "n1"))
    b = view.tasks[("g", "b")]
    assert (b.state, b.awaiting_approval, b.waiting_for) == ("pending", True, ())
    approved = evolve_readiness(fold(g, ran("g", "a", "n1")), human(ev.TaskApproved, "b", t=8), 4)
    b = approved.tasks[("g", "b")]
    assert (b.state, b.approved_by, b.awaiting_approval, b.ready_since) == ("ready", "ana", False, at(8))
    rejected = evolve_readiness(fold(g, ran("g", "a", "n1")), human(ev.TaskRejected, "b"), 4)
    assert states(rejected) == {"a": "succeeded", "b": "cancelled", "c": "cancelled"}


def test_approval_before_dependencies_finish_is_kept():
    g = graph("g", spec("a"), spec("b", "a", tier=3))
    view = fold(g, human(ev.TaskApproved, "b"), ran("g", "a", "n1"))
    assert view.tasks[("g", "b")].state == "ready"


def test_preflight_holds_the_task_then_frees_it_or_fails_it():
    g = graph("g", spec("a", tier=2, preflight="make -n"), spec("b", "a"))
    pre = ev.TaskDispatched(
        event_id="p",
        occurred_at=at(1),
        graph_id="g",
        task_id="a",
        node_id="n1",
        attempt=0,
        command="make -n",
        phase="preflight",
    )

    def pre_done(outcome):
        return ev.TaskCompleted(
            event_id="pc",
            occurred_at=at(2),
            graph_id="g",
            task_id="a",
            node_id="n1",
            attempt=0,
            outcome=outcome,
            phase="preflight",
            error="nope",
        )

    held = fold(g, pre).tasks[("g", "a")]
    assert (held.state, held.preflight_state, held.attempt) == ("dispatched", "running", 0)
    passed = fold(g, pre, pre_done("success")).tasks[("g", "a")]
    assert (passed.state, passed.preflight_state) == ("ready", "passed")
    assert states(fold(g, pre, pre_done("failure"))) == {"a": "failed", "b": "cancelled"}


def test_ranks_depth_and_downstream_are_computed_at_submit():
    g = graph(
        "g",
        spec("a", estimate_s=10.0),
        spec("b", "a", estimate_s=30.0),
        spec("c", "a", estimate_s=5.0),
        spec("d", "b", "c"),  # no estimate: the default 60 s
    )
    view = fold(g)
    shape = {t: (v.depth, v.rank_s, v.downstream) for (_, t), v in view.tasks.items()}
    assert shape == {"a": (0, 100.0, 3), "b": (1, 90.0, 1), "c": (1, 65.0, 1), "d": (2, 60.0, 0)}
    assert (view.graphs["g"].depth, view.graphs["g"].critical_path_s) == (3, 100.0)


def test_graph_totals_and_done():
    view = fold(DIAMOND, ran("g", "a", "n1", "failure"))
    g = view.graphs["g"]
    assert (g.total, g.counts["failed"], g.counts["cancelled"], g.done) == (4, 1, 3, True)
    assert not fold(DIAMOND).graphs["g"].done
    totals = fold(DIAMOND, ran("g", "a", "n1"), dispatched("g", "b", "n1")).graphs["g"].totals()
    assert totals == {"total": 4, "completed": 1, "running": 1, "ready": 1, "blocked": 1, "failed": 0}


def test_a_graph_in_parts_appears_whole_with_its_last_part():
    head = ev.GraphSubmitted(event_id="s", occurred_at=T0, graph_id="g", tasks=(spec("a"),), parts=2)
    part = ev.GraphTasksAdded(event_id="s/1", occurred_at=T0, graph_id="g", part=1, tasks=(spec("b", "a"),))
    assert fold(head).tasks == {}
    assert states(fold(head, part)) == {"a": "ready", "b": "pending"}


def test_task_version_and_last_seq_track_the_task_aggregate():
    view = fold(DIAMOND, registered("n1"), dispatched("g", "a", "n1"), started("g", "a", "n1"))
    a = view.tasks[("g", "a")]
    assert (a.version, a.last_seq, a.seq) == (2, 4, 4)


def test_touched_holds_exactly_the_changed_keys():
    view = fold(DIAMOND, ran("g", "a", "n"), dispatched("g", "b", "n"))
    view.touched.clear()
    view = evolve_readiness(view, completed("g", "b", "n"), 5)
    # b, its dependent, the totals, and every graph's failure rate (`projections.readiness.health`)
    assert view.touched == {"task.g.b", "task.g.d", "graph.g", "health"}
    view.touched.clear()
    view = evolve_readiness(view, dispatched("g", "c", "n"), 6)
    assert view.touched == {"task.g.c", "graph.g"}


def test_redelivered_events_are_skipped_and_orphans_recorded():
    view = fold(DIAMOND, ran("g", "a", "n"))
    again = evolve_readiness(view, completed("g", "a", "n", "failure"), 3)
    assert again.tasks[("g", "a")].state == "succeeded"
    view = evolve_readiness(view, dispatched("other", "x", "n"), 4)
    assert view.ignored and "unknown task other/x" in view.ignored[-1]


def test_a_second_submit_of_the_same_graph_is_ignored():
    view = fold(DIAMOND, ran("g", "a", "n"), DIAMOND)
    assert states(view)["a"] == "succeeded" and "submitted again" in view.ignored[-1]


def test_rebuild_equals_incremental():
    events = flat(
        [
            DIAMOND,
            registered("n1"),
            dispatched("g", "a", "n1"),
            started("g", "a", "n1"),
            completed("g", "a", "n1"),
            ran("g", "b", "n1", "failure"),
        ]
    )
    incremental = ReadinessView()
    for seq, e in enumerate(events, 1):
        incremental = evolve_readiness(incremental, e, seq)
        incremental.touched.clear()
    rebuilt = fold(*events)
    assert rebuilt.tasks == incremental.tasks and rebuilt.graphs == incremental.graphs

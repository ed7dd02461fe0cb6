"""The node-scores view, event by event."""

from __future__ import annotations

from projections.node_scores import NodeScoresView, evolve_node_scores
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import at, completed, dispatched, registered


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

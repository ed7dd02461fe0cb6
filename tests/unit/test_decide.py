"""The decision core: who gets which task, why, and always the same answer for the same input."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.decide import DeciderConfig, Views, decide
from projections.node_scores import NodeScoresView, evolve_node_scores
from projections.readiness import ReadinessView, evolve_readiness
from projections.runner import project
from tests.unit.builders import at, completed, dispatched, registered, submitted

CONFIG = DeciderConfig(node_ttl_s=20)


def views(*events) -> Views:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    return Views(tasks=r.tasks, nodes=n.nodes, seqs={"readiness": r.seq, "node-scores": n.seq})


def plan(decisions):
    return [(d.event.task_id, d.event.node_id, d.event.attempt) for d in decisions]


@pytest.mark.parametrize(
    ("events", "now_s", "expected"),
    [
        # nothing registered: nothing to do
        ((submitted("g", ("a", ())),), 1, []),
        # one node, one slot, two ready tasks: only one goes
        ((submitted("g", ("a", ()), ("b", ())), registered("n1", slots=1)), 1, [("a", "n1", 1)]),
        # the least loaded node wins; ties go to the smaller id
        (
            (submitted("g", ("a", ()), ("b", ())), registered("n2"), registered("n1")),
            1,
            [("a", "n1", 1), ("b", "n2", 1)],
        ),
        # a node that has not been seen for longer than the ttl is not alive
        ((submitted("g", ("a", ())), registered("n1", t=0)), 30, []),
        # busy slots count
        (
            (
                submitted("g", ("a", ()), ("b", ())),
                registered("n1", slots=1),
                dispatched("g", "a", "n1"),
            ),
            2,
            [],
        ),
        # a task whose dependency is unfinished is not dispatched
        (
            (submitted("g", ("a", ()), ("b", ("a",))), registered("n1", slots=4)),
            1,
            [("a", "n1", 1)],
        ),
        # a retried task gets the next attempt number
        (
            (
                submitted("g", ("a", ()), max_attempts=2),
                registered("n1"),
                dispatched("g", "a", "n1"),
                completed("g", "a", "n1", "failure"),
            ),
            4,
            [("a", "n1", 2)],
        ),
        # more dependents first
        (
            (submitted("g", ("x", ()), ("y", ()), ("z", ("y",))), registered("n1", slots=1)),
            1,
            [("y", "n1", 1)],
        ),
    ],
)
def test_who_gets_what(events, now_s, expected):
    assert plan(decide(views(*events), at(now_s), CONFIG)) == expected


def test_every_candidate_is_recorded_with_its_reason():
    v = views(
        submitted("g", ("a", ())),
        registered("n1", slots=2),
        registered("n2", slots=1, t=-60),
        registered("n3", slots=1),
    )
    [d] = decide(v, at(1), CONFIG)[:1]
    reasons = {c.node_id: (c.eligible, c.reason) for c in d.event.candidates}
    assert reasons == {
        "n1": (True, "2 of 2 slots free"),
        "n2": (False, "not alive: last seen 61s ago"),
        "n3": (True, "1 of 1 slots free"),
    }
    assert d.event.node_id == "n1" and d.event.view_seqs == {"node-scores": 4, "readiness": 4}


def test_labels_are_respected():
    from schemas import events as ev

    spec = ev.TaskSpec(id="a", command="x", labels={"os": "macos"})
    sub = ev.GraphSubmitted(event_id="s", occurred_at=at(0), graph_id="g", tasks=(spec,))
    v = views(sub, registered("n1", os="linux"), registered("n2", os="macos"))
    [d] = decide(v, at(1), CONFIG)
    assert d.event.node_id == "n2"
    assert [c.reason for c in d.event.candidates if not c.eligible] == ["missing label os=macos"]


def test_the_guard_is_the_tasks_last_sequence_and_next_version():
    v = views(
        submitted("g", ("a", ()), max_attempts=3),
        registered("n1"),
        dispatched("g", "a", "n1"),
        completed("g", "a", "n1", "failure"),
    )
    [d] = decide(v, at(5), CONFIG)
    assert (d.expected_seq, d.version) == (4, 3)


def test_same_input_same_bytes():
    events = [
        submitted("g", *((f"t{i}", ()) for i in range(30))),
        registered("n2", slots=3),
        registered("n1", slots=5),
    ]
    first = msgspec.json.encode(decide(views(*events), at(1), CONFIG))
    shuffled = views(*events)
    reordered = Views(
        tasks=dict(reversed(list(shuffled.tasks.items()))),
        nodes=dict(reversed(list(shuffled.nodes.items()))),
        seqs=shuffled.seqs,
    )
    assert msgspec.json.encode(decide(reordered, at(1), CONFIG)) == first
    assert len(decide(views(*events), at(1), CONFIG)) == 8


def test_decide_does_not_mutate_its_inputs():
    v = views(submitted("g", ("a", ())), registered("n1"))
    before = (dict(v.tasks), dict(v.nodes))
    decide(v, at(1), CONFIG)
    assert (dict(v.tasks), dict(v.nodes)) == before

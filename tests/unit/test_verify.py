"""`niyantra verify`: each invariant holds on a clean log and is caught when broken."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.replay.verify import verify
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0, completed, dispatched, started, submitted


def with_candidates(d: ev.TaskDispatched, *nodes: str) -> ev.TaskDispatched:
    cands = tuple(rec.Candidate(node_id=n, score=1.0, reason="1 of 1 slots free") for n in (nodes or (d.node_id,)))
    return msgspec.structs.replace(d, candidates=cands)


def d(task: str, node: str = "n1", attempt: int = 1) -> ev.TaskDispatched:
    return with_candidates(dispatched("g", task, node, attempt=attempt))


def run(task: str, node: str = "n1", attempt: int = 1, outcome: str = "success") -> list[ev.AnyEvent]:
    return [d(task, node, attempt), started("g", task, node, attempt), completed("g", task, node, outcome, attempt)]


GRAPH = submitted("g", ("A", ()), ("B", ("A",)), max_attempts=2)
TIER3 = ev.GraphSubmitted(
    event_id="s", occurred_at=T0, graph_id="g", tasks=(rec.TaskSpec(id="A", command="x", tier=3),)
)
LOST = ev.TaskLost(event_id="l", occurred_at=T0, graph_id="g", task_id="A", node_id="n1", attempt=1, reason="lease")
APPROVED = ev.TaskApproved(event_id="ap", occurred_at=T0, graph_id="g", task_id="A", by="ana")


CASES = [
    ("clean run", [GRAPH, *run("A"), *run("B")], set()),
    ("retry then success", [GRAPH, *run("A", outcome="failure"), *run("A", "n2", 2), *run("B")], set()),
    ("lost then new attempt", [GRAPH, d("A"), LOST, *run("A", "n2", 2), *run("B")], set()),
    (
        "I1 attempt dispatched twice",
        [GRAPH, d("A"), d("A", "n2"), started("g", "A", "n2"), completed("g", "A", "n2")],
        {"I1", "I5"},  # n1 holds the attempt (the lifecycle ignores the second dispatch): n2's result is stale
    ),
    ("I2 started before its dependency", [GRAPH, d("B"), started("g", "B", "n1")], {"I2"}),
    ("I3 two terminal states", [GRAPH, *run("A"), completed("g", "A", "n1")], {"I3"}),
    ("I3 graph not finished is fine", [GRAPH, *run("A")], set()),
    # the unapproved dispatch does not move the task (as in readiness), so its result holds no attempt
    ("I4 tier 3 without approval", [TIER3, *run("A")], {"I4", "I5"}),
    ("I4 tier 3 approved", [TIER3, APPROVED, *run("A")], set()),
    ("I5 result of a lost attempt", [GRAPH, d("A"), LOST, d("A", "n2", 2), completed("g", "A", "n1")], {"I5"}),
    ("I6 no candidates", [GRAPH, dispatched("g", "A", "n1")], {"I6"}),
    ("I6 chosen node not a candidate", [GRAPH, with_candidates(dispatched("g", "A", "n1"), "n2")], {"I6"}),
]


@pytest.mark.parametrize(("name", "events", "broken"), CASES, ids=[c[0] for c in CASES])
def test_invariants(name, events, broken):
    report = verify(enumerate(events, start=1))
    assert {v["invariant"] for v in report["violations"]} == broken, report["violations"]
    assert report["ok"] == (not broken)
    assert set(report["checked"]) == {"I1", "I2", "I3", "I4", "I5", "I6"}


def test_a_failed_dependency_ends_its_dependents_cancelled_so_the_graph_is_done():
    report = verify(enumerate([GRAPH, *run("A", outcome="failure"), *run("A", "n2", 2, outcome="failure")], 1))
    assert report["ok"], report["violations"]

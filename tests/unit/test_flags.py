"""Flagged patterns in the decision core: avoided nodes, escalation to approval, the words why
gives, and learned speed per task type. Event sequences folded through the real projections."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from orchestrator.decision.decide import DeciderConfig, Views, decide
from orchestrator.decision.flags import flagged_patterns
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.why import why
from orchestrator.reports.snapshot import feedback
from projections.confidence.fold import ConfidenceView, evolve_confidence, summary_value
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import at, completed, dispatched, graph, observed, registered, spec, started

CONFIG = DeciderConfig(node_ttl_s=20, scoring=ScoringConfig(flag_after=3, flag_cooldown_s=600))


def views(*events) -> Views:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    c = summary_value(project(evolve_confidence, ConfidenceView(), pairs))
    seqs = {"readiness": r.seq, "node-scores": n.seq}
    return Views(
        tasks=r.tasks,
        nodes=n.nodes,
        seqs=seqs,
        types=n.types,
        patterns=n.patterns,
        quality_threshold=c.quality_threshold,
    )


def run(task: str, node: str, t: float, outcome: str = "failure", command: str = "", tail: str = "") -> list:
    """One finished run of history task ``task`` of graph h (its own command unless given)."""
    d = msgspec.structs.replace(dispatched("h", task, node, t=t), command=command or f"run {task}")
    c = msgspec.structs.replace(
        completed("h", task, node, outcome, t=t + 1),
        error="exit code 1" if outcome == "failure" else "",
        output_tail=tail,
    )
    return [d, c]


HISTORY = graph("h", *(spec(f"p{i}", type="compile") for i in range(6)))
TWO_NODES = [HISTORY, registered("n1", slots=2), registered("n2", slots=2)]
N1_BROKEN = run("p0", "n1", 0) + run("p1", "n1", 2) + run("p2", "n1", 4)  # compile fails 3 in a row on n1
NOW = 9
ALIVE = [observed("n1", t=8), observed("n2", t=8)]


def one(events, task="a", now=NOW):
    got = [d for d in decide(views(*events), at(now), CONFIG) if d.event.task_id == task]
    return got[0] if got else None


def test_a_flagged_type_by_node_is_avoided_with_the_reason_in_words():
    d = one([*TWO_NODES, *N1_BROKEN, *ALIVE, graph("g", spec("a", type="compile"))])
    assert d is not None and d.event.node_id == "n2"
    reasons = {c.node_id: (c.eligible, c.reason) for c in d.event.candidates}
    assert reasons["n1"] == (
        False,
        "avoided: type compile failed 3 times in a row (last 4s ago, flag lifts in 596s) on n1",
    )


def test_the_flag_is_per_type_other_types_still_go_there():
    events = [*TWO_NODES, *N1_BROKEN, *ALIVE, graph("g", spec("a", type="lint"))]
    events.append(observed("n2", t=8, running=0))
    d = one(events)
    assert d is not None and all(c.eligible for c in d.event.candidates)


@pytest.mark.parametrize(
    ("name", "extra", "now", "node"),
    [
        ("two failures in a row do not flag", [], NOW, "n1"),
        ("a success clears the streak", run("p2", "n1", 4, "success"), NOW, "n1"),
    ],
)
def test_below_the_bound_or_cleared_nothing_is_avoided(name, extra, now, node):
    events = [*TWO_NODES, *run("p0", "n1", 0), *run("p1", "n1", 2), *extra, *ALIVE]
    events += [registered("n2", slots=0, t=8), graph("g", spec("a", type="compile"))]  # n2 has no slot
    d = one(events, now=now)
    assert d is not None and d.event.node_id == node


def test_the_only_node_flagged_escalates_to_approval_and_an_approval_lets_it_run():
    base = [HISTORY, registered("n1", slots=2), *N1_BROKEN, observed("n1", t=8), graph("g", spec("a", type="compile"))]
    v = views(*base)
    assert one(base) is None
    head = why(v.tasks[("g", "a")], v, at(NOW), CONFIG)["headline"]
    assert head == (
        "escalated to approval: type compile is flagged on every usable node (n1): type compile failed 3 times"
        " in a row (last 4s ago, flag lifts in 596s) on n1; niyantra approve g/a --by NAME"
    )
    approved = ev.TaskApproved(event_id="ok", occurred_at=at(8), graph_id="g", task_id="a", by="ana")
    d = one([*base, approved])
    assert d is not None and d.event.node_id == "n1"
    assert d.event.strategy.startswith("escalated (type compile is flagged on every usable node (n1)")
    assert d.event.strategy.endswith("and approved by ana")


def test_a_busy_unflagged_node_is_waited_for_not_escalated():
    base = [*TWO_NODES, *N1_BROKEN, *ALIVE, graph("g", spec("a", type="compile"))]
    base += [graph("x", spec("long", estimate_s=5.0)), dispatched("x", "long", "n2"), dispatched("x", "long2", "n2")]
    base.append(registered("n2", slots=1, t=8))
    v = views(*base)
    assert one(base) is None
    assert not why(v.tasks[("g", "a")], v, at(NOW), CONFIG)["headline"].startswith("escalated")


def test_after_the_cool_down_the_node_is_tried_again():
    events = [*TWO_NODES, *N1_BROKEN, observed("n1", t=700), registered("n2", slots=0, t=700)]
    d = one([*events, graph("g", spec("a", type="compile"))], now=701)
    assert d is not None and d.event.node_id == "n1"


def broken_command(*nodes_and_times, first: int = 0):
    out = []
    for i, (node, t) in enumerate(nodes_and_times, first):
        out += run(f"p{i}", node, t, command="make release", tail="make: *** [all] Error 2")
    return out


def test_a_command_failing_the_same_way_three_times_is_escalated_whatever_the_nodes():
    base = [*TWO_NODES, *broken_command(("n1", 0), ("n2", 2), ("n1", 4)), *ALIVE]
    base.append(graph("g", rec.TaskSpec(id="a", command="make release"), rec.TaskSpec(id="b", command="make test")))
    v = views(*base)
    decided = {d.event.task_id for d in decide(v, at(NOW), CONFIG) if d.event.graph_id == "g"}
    assert decided == {"b"}
    head = why(v.tasks[("g", "a")], v, at(NOW), CONFIG)["headline"]
    assert head.startswith("escalated to approval: its command failed 3 times in a row (last 4s ago")
    assert "with 'exit 1: make: *** [all] error #' (on n1, n2)" in head and head.endswith(
        "niyantra approve g/a --by NAME"
    )


def test_operator_view_lists_flags_and_the_quality_threshold():
    base = [*TWO_NODES, *N1_BROKEN, *broken_command(("n2", 5), ("n2", 6), ("n2", 7), first=3), *ALIVE]
    v = views(*base)
    listed = flagged_patterns(v.nodes, v.patterns, at(NOW), CONFIG.scoring)
    assert [(p["kind"], p.get("node"), p.get("command"), p["failures"]) for p in listed] == [
        ("type×node", "n1", None, 3),
        ("type×node", "n2", None, 3),
        ("command×signature", None, "make release", 3),
    ]
    fb = feedback(v, at(NOW), CONFIG)
    assert fb["quality_threshold"] == 0.7 and fb["flagged"] == listed
    assert feedback(v, at(NOW + 600), CONFIG)["flagged"] == []  # every flag lifted after the cool-down


def took(task: str, node: str, seconds: float, t: float) -> list:
    d = msgspec.structs.replace(dispatched("s", task, node, t=t), expected_duration_s=10.0)
    c = msgspec.structs.replace(completed("s", task, node, t=t + seconds), duration_s=seconds)
    return [d, started("s", task, node, t=t), c]


def test_the_node_learned_to_be_faster_for_a_type_gets_that_type():
    hist = graph("s", *(spec(f"b{i}", type="build", estimate_s=10.0) for i in range(2)),
                 *(spec(f"t{i}", type="test", estimate_s=10.0) for i in range(2)))  # fmt: skip
    events = [hist, registered("n1", slots=1), registered("n2", slots=1)]
    events += took("b0", "n1", 4.0, 0) + took("b1", "n2", 20.0, 0)  # build: n1 fast, n2 slow
    events += took("t0", "n1", 20.0, 30) + took("t1", "n2", 4.0, 30)  # test: n2 fast, n1 slow
    events += [observed("n1", t=54), observed("n2", t=54)]
    events.append(graph("g", spec("b", type="build", estimate_s=10.0), spec("t", type="test", estimate_s=10.0)))
    picks = {d.event.task_id: d.event.node_id for d in decide(views(*events), at(55), dataclasses.replace(CONFIG))}
    assert picks == {"b": "n1", "t": "n2"}


def test_an_escalated_task_is_recorded_as_unschedulable_at_once():
    from orchestrator.decision.signals import unschedulable

    base = [HISTORY, registered("n1", slots=2), *N1_BROKEN, observed("n1", t=8)]
    base.append(graph("g", spec("a", type="compile"), spec("b", type="lint")))
    v = views(*base)
    got = {u.task_id: u.reason for u in unschedulable(v, at(NOW), CONFIG, [], set(), after_s=300) if u.graph_id == "g"}
    assert list(got) == ["a"] and got["a"].startswith("escalated to approval: type compile")  # b may wait

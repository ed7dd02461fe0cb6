"""A task without a type learns like any other: the node-scores fold files its runs under the
type ``untyped``, and the decision core reads them back from there (it used to look under "",
so an untyped task never used its own history: always the node average and the default estimate)."""

from __future__ import annotations

import pytest

from orchestrator.scoring import ScoringConfig, node_efficiency, success_probability, task_estimate
from projections.node_scores import NodeScoresView, evolve_node_scores
from projections.readiness import TaskView
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import T0, at, dispatched, graph, registered, spec

CFG = ScoringConfig()


def _completed(task: str, node: str, seconds: float, outcome: str = "success") -> ev.TaskCompleted:
    return ev.TaskCompleted(
        event_id=f"c:{task}",
        occurred_at=at(10),
        graph_id="g",
        task_id=task,
        node_id=node,
        attempt=1,
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=0 if outcome == "success" else 1,
        duration_s=seconds,
    )


def _view(task_type: str) -> NodeScoresView:
    events = [
        registered("n1"),
        graph("g", spec("a", estimate_s=10.0, type=task_type), spec("b", type=task_type)),
        dispatched("g", "a", "n1"),
        _completed("a", "n1", 20.0),  # half as fast as estimated
        dispatched("g", "b", "n1"),
        _completed("b", "n1", 5.0, "failure"),
    ]
    return project(evolve_node_scores, NodeScoresView(), list(enumerate(events, 1)))


def _task(task_type: str) -> TaskView:
    return TaskView(graph_id="g", task_id="c", command="true", type=task_type, state="ready", ready_since=T0)


@pytest.mark.parametrize("task_type", ["", "build"])
def test_a_task_uses_the_runs_of_its_own_type_typed_or_not(task_type):
    view = _view(task_type)
    node = view.nodes["n1"]
    eff, evidence = node_efficiency(node, task_type, CFG)
    assert evidence == "1 runs of this type" and eff < 1.0  # it learned n1 is slow for this type
    assert success_probability(node, task_type) == pytest.approx((1.0 + 1.0) / (2.0 + 1.0), rel=0.05)
    types = {t.type: t for t in view.types.values()}
    seconds, source = task_estimate(_task(task_type), types, CFG)
    assert source.startswith("learned mean of type") and seconds == pytest.approx(20.0)

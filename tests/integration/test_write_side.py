"""The write side's rules through the `Orchestrator` application and the CLI, on a real server."""

from __future__ import annotations

import msgspec
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.errors import InvariantViolation
from orchestrator.graphs.submission import graph_events
from orchestrator.graphs.validation import GraphSpec
from orchestrator.writeside.application import Orchestrator
from orchestrator.writeside.mapper import recorded
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0, completed, dispatched, started

runner = CliRunner()
SPEC = GraphSpec(
    id="g",
    title="",
    tasks=(
        rec.TaskSpec(id="A", command="true"),
        rec.TaskSpec(id="B", command="true", depends_on=("A",)),
        rec.TaskSpec(id="R", command="deploy", tier=3),
    ),
)


@pytest.fixture
def orchestrator(nats_server):
    a = Orchestrator(env={"NIYANTRA_NATS_URL": nats_server.url})
    a.submit_graph(graph_events(SPEC, T0, "submit:g"))
    try:
        yield a
    finally:
        a.close()


def test_no_dispatch_of_a_task_that_is_not_ready(orchestrator):
    with pytest.raises(InvariantViolation, match="task g/B is not ready: waiting for A"):
        orchestrator.dispatch(dispatched("g", "B", "n1"))
    orchestrator.dispatch(dispatched("g", "A", "n1"))
    with pytest.raises(InvariantViolation, match="is dispatched as attempt 1 on n1"):
        orchestrator.dispatch(dispatched("g", "A", "n2"))


def test_a_late_result_from_a_stale_attempt_is_refused(orchestrator):
    orchestrator.dispatch(dispatched("g", "A", "n1"))
    orchestrator.report(
        ev.TaskLost(
            event_id="l1", occurred_at=T0, graph_id="g", task_id="A", node_id="n1", attempt=1, reason="lease expired"
        )
    )
    orchestrator.dispatch(dispatched("g", "A", "n2", attempt=2))
    with pytest.raises(InvariantViolation, match="stale attempt"):
        orchestrator.report(completed("g", "A", "n1", attempt=1))
    orchestrator.report(started("g", "A", "n2", attempt=2))
    orchestrator.report(completed("g", "A", "n2", attempt=2))
    assert orchestrator.task("g", "A").state == "succeeded"
    with pytest.raises(InvariantViolation, match="a second end is refused"):
        orchestrator.report(completed("g", "A", "n2", attempt=2))
    orchestrator.dispatch(dispatched("g", "B", "n1"))  # now B is ready


def test_tier_3_approval_through_the_cli(nats_server, orchestrator):
    url = ["--nats-url", nats_server.url]
    wrong = runner.invoke(app, ["approve", "R", "--by", " ", *url])
    assert wrong.exit_code == 2 and "must name who gives it (--by)" in wrong.output
    with pytest.raises(InvariantViolation, match="awaits approval"):
        orchestrator.dispatch(dispatched("g", "R", "n1"))
    ok = runner.invoke(app, ["approve", "R", "--by", "ana", "--reason", "change window", *url])
    assert ok.exit_code == 0, ok.output
    assert orchestrator.task("g", "R").approved_by == "ana"
    again = runner.invoke(app, ["reject", "g/R", "--by", "bo", *url])
    assert again.exit_code == 2 and "already approved by ana" in again.output
    orchestrator.dispatch(dispatched("g", "R", "n1"))


def test_reject_ends_the_task_cancelled(nats_server, orchestrator):
    result = runner.invoke(app, ["reject", "R", "--graph", "g", "--by", "bo", "--nats-url", nats_server.url])
    assert result.exit_code == 0, result.output
    assert orchestrator.task("g", "R").state == "cancelled"


def test_cancel_a_task_then_the_graph(nats_server, orchestrator):
    url = ["--nats-url", nats_server.url]
    assert runner.invoke(app, ["cancel", "g/B", "--by", "ana", *url]).exit_code == 0
    assert orchestrator.task("g", "B").state == "cancelled"
    twice = runner.invoke(app, ["cancel", "g/B", "--by", "ana", *url])
    assert twice.exit_code == 2 and "already cancelled" in twice.output
    whole = runner.invoke(app, ["cancel", "g", "--by", "ana", "--reason", "superseded", *url])
    assert whole.exit_code == 0, whole.output
    assert {t: orchestrator.task("g", t).state for t in "AR"} == {"A": "cancelled", "R": "cancelled"}
    with pytest.raises(InvariantViolation, match="is cancelled"):
        orchestrator.dispatch(dispatched("g", "A", "n1"))
    missing = runner.invoke(app, ["cancel", "nope/X", "--by", "ana", *url])
    assert missing.exit_code == 2 and "no graph 'nope'" in missing.output


def _generate(orchestrator, task_id: str, before: tuple[str, ...], depends_on: tuple[str, ...] = ()) -> None:
    """Append a follow-up rule's `TasksGenerated` as the decider does (on the graph's aggregate)."""
    spec = rec.TaskSpec(id=task_id, command="true", depends_on=depends_on)
    made = rec.GeneratedTask(spec=spec, rule="r", trigger_task="A", trigger_outcome="success", trigger_seq=0,
                            reason="follow-up", before=before)  # fmt: skip
    e = ev.TasksGenerated(event_id=f"gen:{task_id}", occurred_at=T0, graph_id="g", generated=(made,))
    orchestrator.save(recorded(e, orchestrator.graph("g").version + 1))


def _run(orchestrator, task_id: str, outcome: str = "success") -> None:
    orchestrator.dispatch(dispatched("g", task_id, "n1"))
    orchestrator.report(started("g", task_id, "n1"))
    orchestrator.report(msgspec.structs.replace(completed("g", task_id, "n1", outcome=outcome), retryable=False))


def test_a_generated_task_holds_back_a_waiting_task_until_it_succeeds(orchestrator):
    _generate(orchestrator, "lint src/a.c", before=("B",))  # B still waits for A: it now waits for the lint too
    _run(orchestrator, "A")
    with pytest.raises(InvariantViolation, match="task g/B is not ready: waiting for lint src/a.c"):
        orchestrator.dispatch(dispatched("g", "B", "n1"))
    _run(orchestrator, "lint src/a.c")
    orchestrator.dispatch(dispatched("g", "B", "n1"))


def test_a_task_already_released_is_not_held_back(orchestrator):
    _run(orchestrator, "A")  # B is ready before the follow-up is generated
    _generate(orchestrator, "late", before=("B",))
    orchestrator.dispatch(dispatched("g", "B", "n1"))


def test_a_held_task_is_cancelled_when_its_holder_fails(orchestrator):
    _generate(orchestrator, "check", before=("B",))
    _run(orchestrator, "check", outcome="failure")
    with pytest.raises(InvariantViolation, match="cancelled"):
        orchestrator.cancel_task("g", "B", "ana", "", T0, "c1")


def test_no_task_of_a_backlog_graph_runs_before_the_decider_takes_it(nats_server, orchestrator):
    later = GraphSpec(id="later", title="", tasks=(rec.TaskSpec(id="docs", command="make docs"),), backlog_priority=5)
    orchestrator.submit_graph(graph_events(later, T0, "submit:later"))
    with pytest.raises(InvariantViolation, match="graph 'later' waits in the backlog"):
        orchestrator.dispatch(dispatched("later", "docs", "n1"))
    taken = ev.BacklogItemTaken(event_id="take:later", occurred_at=T0, graph_id="later", priority=5, tasks=1,
                                reason="nothing else is ready")  # fmt: skip
    orchestrator.save(recorded(taken, 1))
    orchestrator.dispatch(dispatched("later", "docs", "n1"))

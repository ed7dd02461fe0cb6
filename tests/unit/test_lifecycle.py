"""The one task lifecycle: the cases the three sides once disagreed on, by name, and its rules."""

from __future__ import annotations

import pytest

from orchestrator.decision import lifecycle as lc
from orchestrator.errors import InvariantViolation
from orchestrator.writeside.taskrules import TaskRecord, check_cancel, effective_records, evolve_task
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0, completed, dispatched
from tests.unit.test_lifecycle_property import Checker, G, ReadSide, Snapshot, WriteSide


def _spec(task: str = "t0", **kw: object) -> rec.TaskSpec:
    return rec.TaskSpec(id=task, command="run", **kw)  # type: ignore[arg-type]


def everywhere(specs: tuple[rec.TaskSpec, ...], *events: ev.AnyEvent) -> list[dict[str, Snapshot]]:
    """Each side's view of every task after ``events``: write side, readiness, verify."""
    head = ev.GraphSubmitted(event_id="s", occurred_at=T0, graph_id=G, tasks=specs)
    sides = (WriteSide(specs), ReadSide(head), Checker(head))
    for e in events:
        for side in sides:
            side.apply(e)
    return [side.snapshot() for side in sides]


def preflight(task: str, node: str, outcome: str) -> list[ev.AnyEvent]:
    d = ev.TaskDispatched(
        event_id="p", occurred_at=T0, graph_id=G, task_id=task, node_id=node, attempt=0, command="check",
        phase="preflight", candidates=(rec.Candidate(node_id=node, score=1.0, reason="free"),),
    )  # fmt: skip
    c = ev.TaskCompleted(
        event_id="pc", occurred_at=T0, graph_id=G, task_id=task, node_id=node, attempt=0,
        outcome=outcome, phase="preflight", error="check failed" if outcome == "failure" else "",
    )  # fmt: skip
    return [d, c]


def test_a_failure_not_retryable_with_attempts_left_fails_the_task_everywhere():
    """Was: write side and verify `retry`, readiness `failed` (taskrules ignored ``retryable``)."""
    specs = (_spec(max_attempts=3), _spec("t1", depends_on=("t0",)))
    fail = completed(G, "t0", "n1", outcome="failure")
    fail = ev.TaskCompleted(**{**{f: getattr(fail, f) for f in fail.__struct_fields__}, "retryable": False})
    sides = everywhere(specs, dispatched(G, "t0", "n1"), fail)
    assert sides[0] == sides[1] == sides[2]
    assert sides[0]["t0"] == Snapshot("failed", 1, 0, None)
    assert sides[0]["t1"].state == "cancelled"  # and what depends on it, as readiness always did


def test_a_tier2_task_whose_preflight_fails_is_failed_everywhere():
    """Was: write side `waiting` (a preflight result was ignored), readiness `failed`."""
    specs = (_spec(tier=2, preflight="check", max_attempts=2),)
    sides = everywhere(specs, *preflight("t0", "n1", "failure"))
    assert sides[0] == sides[1] == sides[2] == {"t0": Snapshot("failed", 0, 0, None)}


def test_a_tier2_task_runs_only_after_its_preflight_passed():
    specs = (_spec(tier=2, preflight="check"),)
    early = everywhere(specs, dispatched(G, "t0", "n1"))
    assert early[0] == early[1] == early[2] == {"t0": Snapshot("waiting", 0, 0, None)}
    passed = everywhere(specs, *preflight("t0", "n1", "success"), dispatched(G, "t0", "n2"))
    assert passed[0] == passed[1] == passed[2] == {"t0": Snapshot("dispatched", 1, 0, "n2")}


def _record(*events: ev.AnyEvent, **kw: object) -> TaskRecord:
    r = TaskRecord(graph_id=G, spec=_spec(**kw))
    for e in events:
        r = evolve_task(r, e)
    return r


def test_cancelling_a_failed_task_is_refused_naming_its_state():
    r = _record(dispatched(G, "t0", "n1"), completed(G, "t0", "n1", outcome="failure"))
    with pytest.raises(InvariantViolation, match="task g/t0 is already failed; nothing to cancel"):
        check_cancel(r)


def test_cancelling_a_task_whose_dependency_failed_is_refused_as_cancelled():
    failed = _record(dispatched(G, "t0", "n1"), completed(G, "t0", "n1", outcome="failure"))
    after = TaskRecord(graph_id=G, spec=_spec("t1", depends_on=("t0",)))
    shown = effective_records({"t1": after, "t0": failed}, None)["t1"]
    assert (shown.state, shown.reason) == ("cancelled", "dependency t0 failed")
    with pytest.raises(InvariantViolation, match="task g/t1 is already cancelled"):
        check_cancel(shown)


def test_a_long_chain_is_made_effective_without_recursion():
    n = 5000
    records = {f"t{i}": TaskRecord(graph_id=G, spec=_spec(f"t{i}", depends_on=(f"t{i + 1}",))) for i in range(n)}
    records[f"t{n}"] = TaskRecord(graph_id=G, spec=_spec(f"t{n}"), life=lc.Life(state="failed"))
    out = effective_records(records, None)
    assert out["t0"].state == "cancelled" and out[f"t{n - 1}"].reason == f"dependency t{n} failed"


LIMITS = _spec(max_attempts=2)
HELD_RUN = lc.Life(state="running", attempt=1, node="n1")
HELD_PRE = lc.Life(state="dispatched", attempt=0, node="n1", phase="preflight", preflight="running")


def _done(outcome: str, attempt: int = 1, phase: str = "run", retryable: bool = True) -> ev.TaskCompleted:
    return ev.TaskCompleted(
        event_id="c", occurred_at=T0, graph_id=G, task_id="t0", node_id="n1", attempt=attempt,
        outcome=outcome, phase=phase, retryable=retryable,  # type: ignore[arg-type]
    )  # fmt: skip


def _lost(attempt: int = 1) -> ev.TaskLost:
    return ev.TaskLost(
        event_id="l", occurred_at=T0, graph_id=G, task_id="t0", node_id="n1", attempt=attempt, reason="x"
    )


STEPS = [
    ("success", HELD_RUN, _done("success"), "succeeded", "succeeded"),
    ("partial counts as done", HELD_RUN, _done("partial"), "succeeded", "succeeded"),
    ("failure with attempts left", HELD_RUN, _done("failure"), "retry", "waiting"),
    ("failure not retryable", HELD_RUN, _done("failure", retryable=False), "failed", "failed"),
    ("the last attempt fails", lc.Life(state="running", attempt=2, node="n1"), _done("failure", 2), "failed", "failed"),
    ("a loss", HELD_RUN, _lost(), "lost", "waiting"),
    (
        "the third loss quarantines",
        lc.Life(state="running", attempt=1, node="n1", lost=2),
        _lost(),
        "quarantined",
        "failed",
    ),
    ("preflight passes", HELD_PRE, _done("success", 0, "preflight"), "passed", "waiting"),
    ("preflight fails", HELD_PRE, _done("failure", 0, "preflight"), "preflight failed", "failed"),
    ("a run result for a held preflight", HELD_PRE, _done("success", 0), "", "dispatched"),
    ("a preflight result for a held run", HELD_RUN, _done("success", 1, "preflight"), "", "running"),
    ("a result of a stale attempt", HELD_RUN, _done("success", 0), "", "running"),
    ("a result after the end", lc.Life(state="succeeded", attempt=1), _done("success"), "", "succeeded"),
]


@pytest.mark.parametrize(("name", "life", "e", "move", "state"), STEPS, ids=[s[0] for s in STEPS])
def test_next_state(name, life, e, move, state):
    step = lc.next_state(life, e, LIMITS)
    assert (step.move, step.life.state) == (move, state)
    assert bool(step.why) == (not move)


def test_a_lost_preflight_must_run_again_and_a_retry_keeps_a_passed_one():
    assert lc.next_state(HELD_PRE, _lost(0), LIMITS).life.preflight == ""
    passed = lc.Life(state="running", attempt=1, node="n1", preflight="passed")
    assert lc.next_state(passed, _done("failure"), LIMITS).life.preflight == "passed"


def test_approval_needs_a_name_and_a_task_not_held_nor_ended():
    assert lc.approval_refusal(lc.Life(), " ").startswith("is refused: an approval")
    assert lc.approval_refusal(HELD_RUN, "ana") == "is already running"
    assert lc.approval_refusal(lc.Life(approved_by="bo"), "ana") == "was already approved by bo"
    assert lc.approval_refusal(lc.Life(), "ana") == ""

"""Write-side invariants of a task, each rule table-driven without a server."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvariantViolation
from orchestrator.writeside.taskrules import (
    TaskRecord,
    check_approval,
    check_cancel,
    check_dispatch,
    check_holder,
    evolve_task,
)
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0, completed, dispatched, started


def record(*events: ev.AnyEvent, tier: int = 1, deps: tuple[str, ...] = (), max_attempts: int = 2) -> TaskRecord:
    spec = rec.TaskSpec(
        id="T",
        command="run T",
        depends_on=deps,
        tier=tier,
        max_attempts=max_attempts,
        preflight="check" if tier == 2 else None,
    )
    r = TaskRecord(graph_id="g", spec=spec)
    for e in events:
        r = evolve_task(r, e)
    return r


def done(task: str, outcome: str = "success") -> TaskRecord:
    r = TaskRecord(graph_id="g", spec=rec.TaskSpec(id=task, command="x"))
    return evolve_task(evolve_task(r, dispatched("g", task, "n1")), completed("g", task, "n1", outcome=outcome))


def lost(attempt: int, node: str = "n1") -> ev.TaskLost:
    return ev.TaskLost(
        event_id=f"l{attempt}",
        occurred_at=T0,
        graph_id="g",
        task_id="T",
        node_id=node,
        attempt=attempt,
        reason="agent died",
    )


def human(kind: type, by: str = "ana") -> ev.AnyEvent:
    return kind(event_id=f"h:{kind.__name__}", occurred_at=T0, graph_id="g", task_id="T", by=by, reason="ok")


# --- no dispatch of a task that is not ready ---------------------------------------------

DISPATCH = [
    ("no dependencies: ready", record(), {}, 1, None),
    ("dependency succeeded", record(deps=("A",)), {"A": done("A")}, 1, None),
    ("dependency not finished", record(deps=("A", "B")), {"A": done("A")}, 1, "not ready: waiting for B"),
    ("dependency failed", record(deps=("A",)), {"A": done("A", "failure")}, 1, "waiting for A"),
    ("already dispatched", record(dispatched("g", "T", "n1")), {}, 2, "is dispatched as attempt 1 on n1"),
    ("running", record(dispatched("g", "T", "n1"), started("g", "T", "n1")), {}, 2, "is running"),
    ("succeeded", record(dispatched("g", "T", "n1"), completed("g", "T", "n1")), {}, 2, "is succeeded"),
    ("cancelled", record(human(ev.TaskCancelled)), {}, 1, "is cancelled"),
    (
        "retry after a failure",
        record(dispatched("g", "T", "n1"), completed("g", "T", "n1", outcome="failure")),
        {},
        2,
        None,
    ),
    (
        "retry skips an attempt",
        record(dispatched("g", "T", "n1"), completed("g", "T", "n1", outcome="failure")),
        {},
        3,
        "the next attempt is 2",
    ),
    ("new attempt after a loss", record(dispatched("g", "T", "n1"), lost(1)), {}, 2, None),
    ("tier 3 without approval", record(tier=3), {}, 1, "awaits approval"),
    ("tier 3 approved", record(human(ev.TaskApproved), tier=3), {}, 1, None),
]


@pytest.mark.parametrize(("name", "r", "deps", "attempt", "refusal"), DISPATCH, ids=[d[0] for d in DISPATCH])
def test_dispatch_only_when_ready(name, r, deps, attempt, refusal):
    e = dispatched("g", "T", "n2", attempt=attempt)
    if refusal is None:
        assert check_dispatch(r, deps, e) is e
    else:
        with pytest.raises(InvariantViolation, match=refusal):
            check_dispatch(r, deps, e)


# --- fencing: only the node and attempt that hold the task --------------------------------

HOLDER = [
    ("start by the holder", record(dispatched("g", "T", "n1")), started("g", "T", "n1"), None),
    ("start by another node", record(dispatched("g", "T", "n1")), started("g", "T", "n2"), "stale attempt"),
    (
        "result of an old attempt",
        record(dispatched("g", "T", "n1"), lost(1), dispatched("g", "T", "n2", attempt=2)),
        completed("g", "T", "n1", attempt=1),
        "held by attempt 2 on n2",
    ),
    (
        "result of the current attempt",
        record(dispatched("g", "T", "n1"), lost(1), dispatched("g", "T", "n2", 2)),
        completed("g", "T", "n2", attempt=2),
        None,
    ),
    (
        "second start",
        record(dispatched("g", "T", "n1"), started("g", "T", "n1")),
        started("g", "T", "n1"),
        "already started",
    ),
    ("result for a task never dispatched", record(), completed("g", "T", "n1"), "is not running"),
    (
        "second terminal state",
        record(dispatched("g", "T", "n1"), completed("g", "T", "n1")),
        completed("g", "T", "n1"),
        "already succeeded; a second end is refused",
    ),
    (
        "result after cancel",
        record(dispatched("g", "T", "n1"), human(ev.TaskCancelled)),
        completed("g", "T", "n1"),
        "already cancelled",
    ),
]


@pytest.mark.parametrize(("name", "r", "e", "refusal"), HOLDER, ids=[h[0] for h in HOLDER])
def test_only_the_holder_reports(name, r, e, refusal):
    if refusal is None:
        check_holder(r, e)
    else:
        with pytest.raises(InvariantViolation, match=refusal):
            check_holder(r, e)


def test_a_task_lost_three_times_is_quarantined_as_failed():
    r = record(
        dispatched("g", "T", "n1"),
        lost(1),
        dispatched("g", "T", "n1", 2),
        lost(2),
        dispatched("g", "T", "n1", 3),
        lost(3),
        max_attempts=5,
    )
    assert (r.state, r.lost) == ("failed", 3)


def test_failure_with_attempts_left_is_a_retry_and_the_last_is_final():
    first = record(dispatched("g", "T", "n1"), completed("g", "T", "n1", outcome="failure"), max_attempts=2)
    assert (first.state, first.attempt) == ("waiting", 1)  # waiting for attempt 2
    last = evolve_task(
        evolve_task(first, dispatched("g", "T", "n2", 2)), completed("g", "T", "n2", attempt=2, outcome="failure")
    )
    assert last.state == "failed"


# --- cancel, approve, reject --------------------------------------------------------------


@pytest.mark.parametrize(
    ("r", "refusal"),
    [
        (record(), None),
        (record(dispatched("g", "T", "n1")), None),
        (record(dispatched("g", "T", "n1"), completed("g", "T", "n1")), "already succeeded"),
    ],
)
def test_cancel_only_unfinished_tasks(r, refusal):
    if refusal is None:
        check_cancel(r)
    else:
        with pytest.raises(InvariantViolation, match=refusal):
            check_cancel(r)


APPROVAL = [
    ("tier 3 awaiting", record(tier=3), "ana", None),
    ("tier 1 (an escalated task: flagged patterns)", record(), "ana", None),
    ("tier 2", record(tier=2), "ana", None),
    ("tier 1 running", record(dispatched("g", "T", "n1")), "ana", "already dispatched"),
    ("nobody named", record(tier=3), " ", "must name who"),
    ("already approved", record(human(ev.TaskApproved), tier=3), "bo", "already approved by ana"),
    ("already rejected", record(human(ev.TaskRejected), tier=3), "bo", "already cancelled"),
]


@pytest.mark.parametrize(("name", "r", "by", "refusal"), APPROVAL, ids=[a[0] for a in APPROVAL])
def test_approve_and_reject_only_before_the_task_runs(name, r, by, refusal):
    if refusal is None:
        check_approval(r, by)
    else:
        with pytest.raises(InvariantViolation, match=refusal):
            check_approval(r, by)


def test_approval_records_who():
    assert record(human(ev.TaskApproved, by="ana"), tier=3).approved_by == "ana"
    assert record(human(ev.TaskRejected), tier=3).state == "cancelled"

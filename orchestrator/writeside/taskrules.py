"""Write-side invariants of a task: the pure rules every command on a task must pass.

A task's write-side record is folded from its own events (`evolve_task`); each ``check_*``
function raises `InvariantViolation` naming the task and the rule, or returns the event to
append. The rules:

- a task is dispatched only when it is ready: every dependency succeeded, it is not running,
  not finished, not cancelled, and (tier 3) approved; the attempt is the next one;
- a start or a result is accepted only from the node and attempt that hold the task
  (fencing by attempt number: a late answer from a presumed-lost attempt is refused);
- a task has at most one terminal state;
- cancel applies to an unfinished task; approve and reject to a task not yet finished nor
  running, recording who and why: a tier-3 task awaits one; a lower-tier task needs one only
  when the decider escalates it (flagged patterns, `orchestrator.decision.flags`: a fact it judges from
  the views at ``now``, which this aggregate cannot see), so the write side accepts it any time
  before the task runs (an approval nobody needed changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from orchestrator.errors import InvariantViolation
from schemas import events as ev

RecordState = Literal["waiting", "dispatched", "running", "retry", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class TaskRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the write side knows of one task: its spec and the facts of its own events."""

    graph_id: str
    spec: ev.TaskSpec
    state: RecordState = "waiting"
    attempt: int = 0
    node_id: str | None = None
    approved_by: str | None = None
    lost: int = 0
    reason: str = ""


def evolve_task(r: TaskRecord, e: ev.AnyEvent) -> TaskRecord:
    """Fold one of the task's own events into its record."""
    replace = msgspec.structs.replace
    match e:
        case ev.TaskDispatched(phase="preflight"):
            return r
        case ev.TaskDispatched(node_id=n, attempt=a):
            return replace(r, state="dispatched", attempt=a, node_id=n)
        case ev.TaskStarted():
            return replace(r, state="running")
        case ev.TaskCompleted(phase="preflight"):
            return r
        case ev.TaskCompleted(outcome=o, attempt=a, error=err):
            if o != "failure":
                return replace(r, state="succeeded", reason="")
            final = a >= r.spec.max_attempts
            return replace(r, state="failed" if final else "retry", reason=err)
        case ev.TaskLost(reason=why):
            lost = r.lost + 1
            return replace(r, state="failed" if lost >= QUARANTINE_AFTER else "retry", lost=lost, reason=why)
        case ev.TaskCancelled(reason=why) | ev.TaskRejected(reason=why):
            return replace(r, state="cancelled", reason=why)
        case ev.TaskApproved(by=who):
            return replace(r, approved_by=who)
        case _:
            return r


QUARANTINE_AFTER = 3  # runs that killed their agent before the task is failed (Dask's rule)


def _who(r: TaskRecord) -> str:
    return f"task {r.graph_id}/{r.spec.id}"


def check_dispatch(r: TaskRecord, deps: Mapping[str, TaskRecord], e: ev.TaskDispatched) -> ev.TaskDispatched:
    """A dispatch is allowed only for a ready task and the next attempt."""
    if r.state in FINAL:
        raise InvariantViolation(f"{_who(r)} is {r.state}; it is not dispatched again")
    if e.phase == "run" and r.state in ("dispatched", "running"):
        raise InvariantViolation(f"{_who(r)} is {r.state} as attempt {r.attempt} on {r.node_id}")
    waiting = sorted(d for d in r.spec.depends_on if deps.get(d) is None or deps[d].state != "succeeded")
    if waiting:
        raise InvariantViolation(f"{_who(r)} is not ready: waiting for {', '.join(waiting)}")
    if r.spec.tier == 3 and r.approved_by is None:
        raise InvariantViolation(f"{_who(r)} is tier 3 and awaits approval")
    expected = r.attempt + (0 if e.phase == "preflight" else 1)
    if e.phase == "run" and e.attempt != expected:
        raise InvariantViolation(f"{_who(r)}: dispatch names attempt {e.attempt}, the next attempt is {expected}")
    return e


def check_holder(r: TaskRecord, e: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> None:
    """A start, a result or a loss counts only from the node and attempt that hold the task."""
    if r.state in FINAL:
        raise InvariantViolation(f"{_who(r)} is already {r.state}; a second end is refused")
    if r.state not in ("dispatched", "running"):
        raise InvariantViolation(f"{_who(r)} is not running (it is {r.state}); {type(e).__name__} refused")
    if (e.node_id, e.attempt) != (r.node_id, r.attempt):
        raise InvariantViolation(
            f"{_who(r)} is held by attempt {r.attempt} on {r.node_id}; "
            f"{type(e).__name__} from attempt {e.attempt} on {e.node_id} refused (stale attempt)"
        )
    if isinstance(e, ev.TaskStarted) and r.state == "running":
        raise InvariantViolation(f"{_who(r)} attempt {r.attempt} already started")


def check_cancel(r: TaskRecord) -> None:
    """Only an unfinished task can be cancelled."""
    if r.state in FINAL:
        raise InvariantViolation(f"{_who(r)} is already {r.state}; nothing to cancel")


def check_approval(r: TaskRecord, by: str) -> None:
    """Approve and reject apply to a task not finished, not running, not yet approved, and name who."""
    if not by.strip():
        raise InvariantViolation(f"{_who(r)}: an approval or rejection must name who gives it (--by)")
    if r.state in FINAL:
        raise InvariantViolation(f"{_who(r)} is already {r.state}")
    if r.approved_by is not None:
        raise InvariantViolation(f"{_who(r)} was already approved by {r.approved_by}")
    if r.state in ("dispatched", "running"):
        raise InvariantViolation(f"{_who(r)} is already {r.state}")

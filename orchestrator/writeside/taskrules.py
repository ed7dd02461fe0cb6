"""Write-side invariants of a task: the pure rules every command on a task must pass.

A task's write-side record is folded from its own events (`evolve_task`) by the one task
lifecycle (`orchestrator.decision.lifecycle`), which the views and `verify` use too; each ``check_*``
function raises `InvariantViolation` naming the task and the rule, or returns the event to
append. The rules:

- a task is dispatched only when it is ready: every dependency succeeded (including a generated
  task that holds it back, `orchestrator.writeside.holdback`), it is not held, not finished,
  (tier 3) approved, (tier 2) its preflight passed; the attempt is the next one;
- a start or a result is accepted only from the node and attempt that hold the task
  (fencing by attempt number: a late answer from a presumed-lost attempt is refused);
- a task has at most one terminal state; a task whose dependency failed or was cancelled, or
  whose graph was cancelled, is cancelled (`effective`), as the views show it;
- cancel applies to an unfinished task; approve and reject to a task not yet finished nor
  held, recording who and why: a tier-3 task awaits one; a lower-tier task needs one only
  when the decider escalates it (flagged patterns, `orchestrator.decision.flags`: a fact it judges from
  the views at ``now``, which this aggregate cannot see), so the write side accepts it any time
  before the task runs (an approval nobody needed changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from orchestrator.decision import lifecycle as lc
from orchestrator.errors import InvariantViolation
from schemas import events as ev
from schemas import records as rec

FINAL: frozenset[str] = lc.TERMINAL


class TaskRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the write side knows of one task: its spec and where its events put it."""

    graph_id: str
    spec: rec.TaskSpec
    life: lc.Life = lc.Life()
    reason: str = ""
    ended_at: int = 0  # the log position of the event that ended it (0: unfinished, or not read from the log)

    @property
    def state(self) -> lc.LifeState:
        """The task's lifecycle state."""
        return self.life.state

    @property
    def attempt(self) -> int:
        """The last run attempt dispatched."""
        return self.life.attempt

    @property
    def node_id(self) -> str | None:
        """The node of the last attempt dispatched (the holder's while held)."""
        return self.life.node

    @property
    def approved_by(self) -> str | None:
        """Who approved the task, if anyone did."""
        return self.life.approved_by

    @property
    def lost(self) -> int:
        """How many of its attempts were lost."""
        return self.life.lost


def evolve_task(r: TaskRecord, e: ev.AnyEvent, position: int = 0) -> TaskRecord:
    """Fold one of the task's own events, at ``position`` in the log, into its record (one that
    does not fit changes nothing)."""
    if not isinstance(e, lc.TaskEvent):
        return r
    step = lc.next_state(r.life, e, r.spec)
    if not step.move:
        return r
    ended = position if step.life.state in FINAL and r.state not in FINAL else r.ended_at
    return msgspec.structs.replace(r, life=step.life, reason=_reason(e, step.move), ended_at=ended)


def _reason(e: lc.TaskEvent, move: lc.Move) -> str:
    match e:
        case ev.TaskCompleted(error=err) if move in ("retry", "failed", "preflight failed"):
            return err
        case ev.TaskLost(reason=why) | ev.TaskCancelled(reason=why) | ev.TaskRejected(reason=why):
            return why
    return ""


def effective(r: TaskRecord, deps: Mapping[str, TaskRecord], cancelled_by: str | None) -> TaskRecord:
    """The record as the views show it: cancelled when its graph was cancelled or a dependency
    (in ``deps``, themselves effective) failed or was cancelled."""
    if r.state in FINAL:
        return r
    if cancelled_by is not None:
        why = f"graph cancelled by {cancelled_by}"
    else:
        ended = next((d for d in r.spec.depends_on if d in deps and deps[d].state in ("failed", "cancelled")), None)
        if ended is None:
            return r
        why = f"dependency {ended} {deps[ended].state}"
    life = lc.dependency_ended(r.life)
    assert life is not None  # the record is unfinished
    return msgspec.structs.replace(r, life=life, reason=why)


def effective_records(records: Mapping[str, TaskRecord], cancelled_by: str | None) -> dict[str, TaskRecord]:
    """`effective` of every record of one graph, each after its dependencies."""
    out: dict[str, TaskRecord] = {}
    for tid in dependency_order(records):
        out[tid] = effective(records[tid], out, cancelled_by)
    return out


def dependency_order(records: Mapping[str, TaskRecord]) -> list[str]:
    """The records' task ids, each after its dependencies (an explicit stack: a chain of any
    length is fine, and a cycle, which a valid graph has not, still ends)."""
    out: list[str] = []
    done: set[str] = set()
    entered: set[str] = set()
    for root in records:
        stack = [root]
        while stack:
            tid = stack[-1]
            if tid in done:
                stack.pop()
                continue
            if tid not in entered:
                entered.add(tid)
                todo = [d for d in records[tid].spec.depends_on if d in records and d not in done]
                if todo:
                    stack.extend(todo)
                    continue
            stack.pop()
            done.add(tid)
            out.append(tid)
    return out


def _who(r: TaskRecord) -> str:
    return f"task {r.graph_id}/{r.spec.id}"


def _refuse(r: TaskRecord, why: str) -> None:
    if why:
        raise InvariantViolation(f"{_who(r)} {why}")


def check_dispatch(r: TaskRecord, deps: Mapping[str, TaskRecord], e: ev.TaskDispatched) -> ev.TaskDispatched:
    """A dispatch is allowed only for a ready task and the next attempt."""
    if r.state in FINAL or r.state in lc.HELD:
        _refuse(r, lc.dispatch_refusal(r.life, e, r.spec))
    waiting = sorted(d for d in r.spec.depends_on if deps.get(d) is None or deps[d].state != "succeeded")
    if waiting:
        raise InvariantViolation(f"{_who(r)} is not ready: waiting for {', '.join(waiting)}")
    _refuse(r, lc.dispatch_refusal(r.life, e, r.spec))
    return e


def check_live(backlog: bool, taken: bool, graph_id: str) -> None:
    """No task of a backlog graph runs before the decider takes the graph."""
    if backlog and not taken:
        raise InvariantViolation(
            f"graph {graph_id!r} waits in the backlog: no task of it runs until the decider takes it"
        )


def check_taken(backlog: bool, taken: bool, graph_id: str) -> bool:
    """Whether taking the graph from the backlog is a move: it is a waiting backlog graph."""
    return backlog and not taken


def check_holder(r: TaskRecord, e: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> None:
    """A start, a result or a loss counts only from the node and attempt that hold the task."""
    _refuse(r, lc.holder_refusal(r.life, e))


def check_cancel(r: TaskRecord) -> None:
    """Only an unfinished task can be cancelled; a refusal names the state it is in."""
    _refuse(r, lc.cancel_refusal(r.life))


def check_approval(r: TaskRecord, by: str) -> None:
    """Approve and reject apply to a task not finished, not held, not yet approved, and name who."""
    _refuse(r, lc.approval_refusal(r.life, by))

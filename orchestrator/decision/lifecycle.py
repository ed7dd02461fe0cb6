"""The lifecycle of one task: its states, what each of its events does, what commands it accepts.

One definition, pure, used by the write side (`orchestrator.writeside.taskrules`), the readiness view
(`projections.readiness.fold`) and `niyantra verify` (`orchestrator.replay.verify`), so that the three
agree on every task at every step (tests/unit/test_lifecycle_property.py folds random histories
through all three). Each keeps what only it needs (texts, timestamps, dependants, violations)
and takes the task's state, attempt, holder, losses, preflight and approval from here.

States (`LifeState`): ``waiting`` (not held, not ended; the views show it ``pending`` or
``ready`` from its dependencies and approval gate), ``dispatched`` and ``running`` (held by one
attempt on one node: `HELD`), ``succeeded``, ``failed``, ``cancelled`` (`TERMINAL`: final).

What each event does (`next_state`; an event that does not fit changes nothing, and says why):

- ``TaskDispatched`` (run) fits a waiting task and names the next attempt (attempt + 1); a
  tier-3 task needs its approval first, a tier-2 task with a preflight needs it passed. The
  preflight (``phase="preflight"``) fits a waiting task, names the current attempt and holds the
  task while it runs; its result fits only a held preflight: passed makes the task wait for its
  run, failed fails the task.
- ``TaskStarted`` fits a dispatched task, from the node and attempt that hold it.
- ``TaskCompleted`` fits a held task from its holder, of the held phase. Success and partial
  (a run below the quality bar: the work exists) succeed. A failure with attempts left that the
  agent marked retryable makes the task wait for its next attempt; otherwise it fails.
- ``TaskLost`` fits a held task from its holder: the task waits for a new attempt, and the
  `QUARANTINE_AFTER`-th loss fails it as poison (Dask's rule).
- ``TaskCancelled`` and ``TaskRejected`` fit an unfinished task and cancel it; a task whose
  dependency failed or was cancelled is cancelled too (`dependency_ended`), and so is every
  unfinished task of a cancelled graph.
- ``TaskApproved`` fits an unfinished task not held nor approved yet, naming who approves.
- ``TaskCacheHit`` fits a waiting tier-1 task that no attempt holds: it succeeds with an earlier
  success's outputs, without an attempt of its own.

A generated task holds back each of its ``before`` tasks that is unfinished and still waiting
for a dependency (it waits for the new task too), unless the new task is born cancelled (a
dependency failed, or its graph was cancelled) or the held task is one the new task itself
depends on, however indirectly (`closes_cycle`: holding it would deadlock both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple, Protocol

import msgspec

from schemas import events as ev
from schemas import records as rec

LifeState = Literal["waiting", "dispatched", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = rec.TERMINAL_STATES
HELD: frozenset[str] = frozenset({"dispatched", "running"})
QUARANTINE_AFTER = 3  # runs that killed their agent before the task is failed (Dask's rule)

# What an event did: the name of the transition ("" when the event does not fit).
Move = Literal[
    "",
    "dispatched",
    "preflight",
    "started",
    "succeeded",
    "retry",
    "failed",
    "lost",
    "quarantined",
    "passed",
    "preflight failed",
    "cancelled",
    "approved",
    "cache hit",
]
TaskEvent = (
    ev.TaskDispatched
    | ev.TaskStarted
    | ev.TaskCompleted
    | ev.TaskLost
    | ev.TaskCancelled
    | ev.TaskRejected
    | ev.TaskApproved
    | ev.TaskCacheHit
)


class Limits(Protocol):
    """What of a task's declaration the lifecycle reads (a `TaskSpec` or a readiness entry)."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def tier(self) -> int: ...
    @property
    def preflight(self) -> str | None: ...


class Life(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where one task is in its lifecycle."""

    state: LifeState = "waiting"
    attempt: int = 0  # the last run attempt dispatched (a preflight runs under the current one)
    node: str | None = None  # of the last attempt dispatched (the holder's while held)
    phase: rec.Phase = "run"  # of the held attempt
    preflight: str = ""  # "", "running", "passed" or "failed"
    lost: int = 0
    approved_by: str | None = None


class Step(NamedTuple):
    """The task after an event, the transition it made (``""``: none) and, if none, why."""

    life: Life
    move: Move
    why: str = ""


_OF_TASK_STATE: dict[str, LifeState] = {
    "pending": "waiting",
    "ready": "waiting",
    "dispatched": "dispatched",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


def of_task_state(state: rec.TaskState) -> LifeState:
    """The lifecycle state a view's task state stands for (``pending`` and ``ready`` both wait)."""
    return _OF_TASK_STATE[state]


def is_terminal(life: Life) -> bool:
    """The task has ended (succeeded, failed or cancelled): nothing moves it any more."""
    return life.state in TERMINAL


def is_held(life: Life) -> bool:
    """An attempt (a run or a preflight) holds the task on a node."""
    return life.state in HELD


def cancel_refusal(life: Life) -> str:
    """Why a cancel is refused ("" if it is accepted): only an unfinished task is cancelled."""
    return f"is already {life.state}; nothing to cancel" if is_terminal(life) else ""


def approval_refusal(life: Life, by: str) -> str:
    """Why an approval or a rejection is refused ("" if it is accepted)."""
    if not by.strip():
        return "is refused: an approval or rejection must name who gives it (--by)"
    if is_terminal(life) or is_held(life):
        return f"is already {life.state}"
    if life.approved_by is not None:
        return f"was already approved by {life.approved_by}"
    return ""


def dispatch_refusal(life: Life, e: ev.TaskDispatched, limits: Limits) -> str:
    """Why a dispatch does not fit the task ("" if it does); dependencies are the caller's."""
    if is_terminal(life):
        return f"is {life.state}; it is not dispatched again"
    if is_held(life):
        return f"is {life.state} as attempt {life.attempt} on {life.node}"
    if limits.tier == 3 and life.approved_by is None:
        return "is tier 3 and awaits approval"
    if e.phase == "preflight":
        if e.attempt != life.attempt:
            return f"was dispatched a preflight naming attempt {e.attempt}; the current attempt is {life.attempt}"
        return ""
    if limits.tier == 2 and limits.preflight and life.preflight != "passed":
        return "is tier 2 and its preflight has not passed"
    if e.attempt != life.attempt + 1:
        return f"was dispatched naming attempt {e.attempt}; the next attempt is {life.attempt + 1}"
    return ""


def cache_hit_refusal(life: Life, limits: Limits) -> str:
    """Why a cache hit does not fit the task ("" if it does): only a waiting tier-1 task is reused."""
    if is_terminal(life) or is_held(life):
        return f"is {life.state}; a cache hit is refused"
    if limits.tier != 1:
        return f"is tier {limits.tier}; only tier-1 work is reused from the cache"
    return ""


def holder_refusal(life: Life, e: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> str:
    """Why a start, result or loss is refused ("" if it comes from the attempt holding the task)."""
    name = type(e).__name__
    if is_terminal(life):
        return f"is already {life.state}; a second end is refused"
    if not is_held(life):
        return f"is not running (it is {life.state}); {name} refused"
    if (e.node_id, e.attempt) != (life.node, life.attempt):
        return (
            f"is held by attempt {life.attempt} on {life.node}; "
            f"{name} from attempt {e.attempt} on {e.node_id} refused (stale attempt)"
        )
    if isinstance(e, ev.TaskStarted) and life.state == "running":
        return f"attempt {life.attempt} already started"
    if isinstance(e, ev.TaskCompleted) and e.phase != life.phase:
        return f"holds a {life.phase} of attempt {life.attempt}; a {e.phase} result refused"
    return ""


def next_state(life: Life, e: TaskEvent, limits: Limits) -> Step:
    """The task after one of its own events (unchanged, with the reason, if it does not fit)."""
    match e:
        case ev.TaskDispatched():
            return _refused(life, dispatch_refusal(life, e, limits)) or _dispatched(life, e)
        case ev.TaskStarted() | ev.TaskCompleted() | ev.TaskLost():
            return _refused(life, holder_refusal(life, e)) or _reported(life, e, limits)
        case ev.TaskCancelled():
            return _refused(life, cancel_refusal(life)) or _ended(life, "cancelled", "cancelled")
        case ev.TaskRejected():
            return _refused(life, approval_refusal(life, e.by)) or _ended(life, "cancelled", "cancelled")
        case ev.TaskApproved():
            why = approval_refusal(life, e.by)
            return _refused(life, why) or Step(msgspec.structs.replace(life, approved_by=e.by), "approved")
        case ev.TaskCacheHit():
            return _refused(life, cache_hit_refusal(life, limits)) or _ended(life, "succeeded", "cache hit")
    raise TypeError(f"{type(e).__name__} is not an event of a task's lifecycle")


def dependency_ended(life: Life) -> Life | None:
    """The task once a dependency failed or was cancelled (or its graph was cancelled): cancelled
    unless it has ended already (None: nothing changes)."""
    return None if is_terminal(life) else _ended(life, "cancelled", "cancelled").life


def _refused(life: Life, why: str) -> Step | None:
    return Step(life, "", why) if why else None


def _dispatched(life: Life, e: ev.TaskDispatched) -> Step:
    replace = msgspec.structs.replace
    if e.phase == "preflight":
        return Step(
            replace(life, state="dispatched", node=e.node_id, phase="preflight", preflight="running"), "preflight"
        )
    return Step(replace(life, state="dispatched", node=e.node_id, phase="run", attempt=e.attempt), "dispatched")


def _reported(life: Life, e: ev.TaskStarted | ev.TaskCompleted | ev.TaskLost, limits: Limits) -> Step:
    replace = msgspec.structs.replace
    match e:
        case ev.TaskStarted():
            return Step(replace(life, state="running"), "started")
        case ev.TaskLost():
            lost = life.lost + 1
            pre = "" if life.phase == "preflight" else life.preflight
            if lost >= QUARANTINE_AFTER:
                return _ended(replace(life, lost=lost, preflight=pre), "failed", "quarantined")
            return Step(replace(life, state="waiting", phase="run", lost=lost, preflight=pre), "lost")
        case ev.TaskCompleted(phase="preflight", outcome=o):
            if o == "failure":
                return _ended(replace(life, preflight="failed"), "failed", "preflight failed")
            return Step(replace(life, state="waiting", phase="run", preflight="passed"), "passed")
        case ev.TaskCompleted(outcome=o):
            if o != "failure":
                return _ended(life, "succeeded", "succeeded")
            if e.retryable and e.attempt < limits.max_attempts:
                return Step(replace(life, state="waiting"), "retry")
            return _ended(life, "failed", "failed")
    raise TypeError(f"{type(e).__name__} is not a report of an attempt")


def _ended(life: Life, state: LifeState, move: Move) -> Step:
    return Step(msgspec.structs.replace(life, state=state, phase="run"), move)


def closes_cycle(deps_of: Callable[[str], Iterable[str]], new: str, held: str) -> bool:
    """Whether holding ``held`` back until ``new`` succeeds would close a cycle: ``new`` depends
    on ``held``, directly or through other tasks (``deps_of`` gives a task's dependencies)."""
    seen: set[str] = set()
    stack = list(deps_of(new))
    while stack:
        cur = stack.pop()
        if cur == held:
            return True
        if cur not in seen:
            seen.add(cur)
            stack.extend(deps_of(cur))
    return False

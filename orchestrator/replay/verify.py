"""Invariants over the whole log, checked by one pure pass (`niyantra verify`).

I1 no task attempt dispatched twice; I2 no task started before all its dependencies
succeeded; I3 at most one terminal state per task, and exactly one for every task of a
finished graph; I4 no tier-3 run without an approval; I5 no result accepted from a stale
attempt; I6 every decision carries candidates with reasons and picks an eligible one.
(I7, replay reproduces every decision, is checked by `niyantra replay --check`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator.decision import lifecycle as lc
from orchestrator.graphs.submission import GraphAssembly
from schemas import events as ev
from schemas import records as rec

INVARIANTS = {
    "I1": "no task dispatched twice for one attempt",
    "I2": "no task started before all its dependencies succeeded",
    "I3": "at most one terminal state per task; exactly one once its graph is done",
    "I4": "no tier-3 run without an approval",
    "I5": "no result accepted from a stale attempt",
    "I6": "every decision carries candidates and reasons",
}


@dataclass
class _Task:
    spec: rec.TaskSpec
    life: lc.Life = lc.Life()
    terminal: list[str] = field(default_factory=list)  # every end the log gave it (I3: at most one)


@dataclass
class Verifier:
    """Folds the log, collecting violations; `report` gives the result."""

    graphs: dict[str, dict[str, _Task]] = field(default_factory=dict)
    dispatched: set[tuple[str, str, int]] = field(default_factory=set)
    violations: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))
    assembly: GraphAssembly = field(default_factory=GraphAssembly)
    cancelled: set[str] = field(default_factory=set)  # graphs cancelled
    backlog: set[str] = field(default_factory=set)  # backlog graphs the decider has not taken yet
    events: int = 0

    def _violate(self, inv: str, seq: int, e: Any, message: str) -> None:
        self.violations.append(
            {
                "invariant": inv,
                "seq": seq,
                "graph": getattr(e, "graph_id", None),
                "task": getattr(e, "task_id", None),
                "message": message,
            }
        )

    def judgement(self, graph_id: str, task_id: str) -> tuple[str, int, int, str | None]:
        """A task's state, attempt, losses and holder's node as this fold of the log sees it."""
        life = self.graphs[graph_id][task_id].life
        return life.state, life.attempt, life.lost, life.node

    def _end(self, t: _Task, state: str) -> None:
        """A task ended outside its own events (its graph or a dependency): cancelled."""
        t.terminal.append(state)
        t.life = lc.dependency_ended(t.life) or t.life

    def _cancel_downstream(self, tasks: dict[str, _Task], failed: str) -> None:
        stack = [failed]
        while stack:
            cur = stack.pop()
            for tid, t in tasks.items():
                if cur in t.spec.depends_on and not t.terminal:
                    self._end(t, "cancelled")
                    stack.append(tid)

    def _step(self, tasks: dict[str, _Task], t: _Task, e: lc.TaskEvent) -> lc.Step:
        """Move ``t`` by the lifecycle; an end is recorded, and one that is not a success
        cancels what depends on the task (as the readiness view does)."""
        step = lc.next_state(t.life, e, t.spec)
        if step.move:
            t.life = step.life
            if lc.is_terminal(step.life):
                t.terminal.append(step.life.state)
                if step.life.state != "succeeded":
                    self._cancel_downstream(tasks, e.task_id)
        return step

    def apply(self, seq: int, e: ev.AnyEvent) -> None:
        self.events += 1
        match e:
            case ev.GraphSubmitted() | ev.GraphTasksAdded() | ev.BacklogItemTaken() | ev.GraphCancelled():
                self._graph_event(e)
            case ev.TasksGenerated():
                self._generated(e)
            case ev.TaskDispatched() | ev.TaskStarted() | ev.TaskCompleted() | ev.TaskLost():
                self._task_event(seq, e)
            case ev.TaskCacheHit():
                self._cache_hit(seq, e)
            case ev.TaskCancelled() | ev.TaskRejected() | ev.TaskApproved():
                tasks = self.graphs.get(e.graph_id, {})
                task = tasks.get(e.task_id)
                if task is not None:
                    self._step(tasks, task, e)
            case _:
                pass

    def _graph_event(self, e: ev.GraphSubmitted | ev.GraphTasksAdded | ev.BacklogItemTaken | ev.GraphCancelled) -> None:
        """A graph's parts, its taking from the backlog, its cancel (which ends every unfinished task)."""
        if isinstance(e, ev.BacklogItemTaken):
            self.backlog.discard(e.graph_id)
        elif isinstance(e, ev.GraphCancelled):
            self.cancelled.add(e.graph_id)
            for t in self.graphs.get(e.graph_id, {}).values():
                if not t.terminal:
                    self._end(t, "cancelled")
        else:
            whole = self.assembly.add(e)
            if whole is not None and whole.graph_id not in self.graphs:
                self.graphs[whole.graph_id] = {s.id: _Task(spec=s) for s in whole.tasks}
                if whole.backlog_priority is not None:
                    self.backlog.add(whole.graph_id)

    def _cache_hit(self, seq: int, e: ev.TaskCacheHit) -> None:
        """A hit completes the task like a run would: only once its dependencies succeeded (I2)."""
        tasks = self.graphs.get(e.graph_id, {})
        t = tasks.get(e.task_id)
        if t is None:
            self._violate("I2", seq, e, "TaskCacheHit for a task of no accepted graph")
            return
        self.counts["I2"] += 1
        missing = [d for d in t.spec.depends_on if tasks[d].terminal != ["succeeded"]]
        if missing:
            self._violate("I2", seq, e, f"cache hit before {', '.join(missing)} succeeded")
            return
        if t.terminal:
            self._violate("I3", seq, e, f"TaskCacheHit after the task ended {t.terminal[0]}")
            return
        self._step(tasks, t, e)

    def _generated(self, e: ev.TasksGenerated) -> None:
        """Generated tasks join their graph; one whose dependency already failed, or whose graph
        was cancelled, is cancelled."""
        tasks = self.graphs.get(e.graph_id)
        if tasks is None:
            return
        for x in e.generated:
            if x.spec.id in tasks:
                continue
            t = tasks[x.spec.id] = _Task(spec=x.spec)
            doomed = any(tasks[d].terminal not in ([], ["succeeded"]) for d in x.spec.depends_on if d in tasks)
            if doomed or e.graph_id in self.cancelled:
                self._end(t, "cancelled")
                continue
            for b in x.before:  # as readiness: an unfinished task still waiting for a dependency waits for it too
                held = tasks.get(b)
                if held is None or held.terminal or x.spec.id in held.spec.depends_on:
                    continue
                if lc.closes_cycle(lambda k: tasks[k].spec.depends_on if k in tasks else (), x.spec.id, b):
                    continue
                if any(tasks[d].terminal != ["succeeded"] for d in held.spec.depends_on if d in tasks):
                    held.spec = msgspec.structs.replace(held.spec, depends_on=(*held.spec.depends_on, x.spec.id))

    def _task_event(self, seq: int, e: ev.TaskDispatched | ev.TaskStarted | ev.TaskCompleted | ev.TaskLost) -> None:
        tasks = self.graphs.get(e.graph_id, {})
        t = tasks.get(e.task_id)
        if t is None:
            self._violate("I2", seq, e, f"{type(e).__name__} for a task of no accepted graph")
            return
        if isinstance(e, ev.TaskDispatched):
            self._dispatch(seq, e, t, tasks)
        elif isinstance(e, ev.TaskStarted):
            self.counts["I2"] += 1
            missing = [d for d in t.spec.depends_on if tasks[d].terminal != ["succeeded"]]
            if missing:
                self._violate("I2", seq, e, f"started before {', '.join(missing)} succeeded")
            self._step(tasks, t, e)
        elif isinstance(e, ev.TaskLost) or e.phase == "run":
            self._result(seq, e, t, tasks)
        else:
            self._step(tasks, t, e)  # a preflight's result

    def _dispatch(self, seq: int, e: ev.TaskDispatched, t: _Task, tasks: dict[str, _Task]) -> None:
        self._check_dispatch(seq, e, t)
        ready = e.graph_id not in self.backlog and all(
            tasks[d].life.state == "succeeded" for d in t.spec.depends_on if d in tasks
        )
        if ready:
            self._step(tasks, t, e)  # a dispatch of a task not ready changes nothing (as in readiness)

    def _check_dispatch(self, seq: int, e: ev.TaskDispatched, t: _Task) -> None:
        self.counts["I6"] += 1
        chosen = [c for c in e.candidates if c.node_id == e.node_id and c.eligible]
        if not e.candidates or any(not c.reason for c in e.candidates) or not chosen:
            self._violate("I6", seq, e, "decision without candidates and reasons, or its node is not an eligible one")
        if e.phase != "run":
            return
        self.counts["I1"] += 1
        key = (e.graph_id, e.task_id, e.attempt)
        if key in self.dispatched:
            self._violate("I1", seq, e, f"attempt {e.attempt} dispatched twice")
        self.dispatched.add(key)
        if t.spec.tier == 3:
            self.counts["I4"] += 1
            if t.life.approved_by is None:
                self._violate("I4", seq, e, "tier-3 task dispatched without an approval")

    def _result(self, seq: int, e: ev.TaskCompleted | ev.TaskLost, t: _Task, tasks: dict[str, _Task]) -> None:
        self.counts["I5"] += 1
        if t.terminal:
            self._violate("I3", seq, e, f"{type(e).__name__} after the task ended {t.terminal[0]}")
            return
        if not self._step(tasks, t, e).move:
            life = t.life
            holder = f"attempt {life.attempt} on {life.node}" if lc.is_held(life) else "no attempt"
            self._violate("I5", seq, e, f"result of attempt {e.attempt} on {e.node_id} while {holder} holds the task")

    def report(self) -> dict[str, Any]:
        """Violations (empty when every invariant holds) and what was checked."""
        violations = list(self.violations)
        for gid, tasks in sorted(self.graphs.items()):
            done = all(t.terminal for t in tasks.values())
            for tid, t in tasks.items():
                self.counts["I3"] += 1
                if len(t.terminal) > 1 or (done and len(t.terminal) != 1):
                    violations.append(
                        {
                            "invariant": "I3",
                            "seq": None,
                            "graph": gid,
                            "task": tid,
                            "message": f"terminal states {t.terminal}",
                        }
                    )
        return {
            "ok": not violations,
            "events": self.events,
            "checked": {k: {"rule": v, "checks": self.counts[k]} for k, v in INVARIANTS.items()},
            "violations": violations,
        }


def verify(events: Iterable[tuple[int, ev.AnyEvent]]) -> dict[str, Any]:
    """Check every invariant over ``(seq, event)`` pairs in stream order."""
    v = Verifier()
    for seq, e in events:
        v.apply(seq, e)
    return v.report()

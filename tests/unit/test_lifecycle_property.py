"""Property: the write side, the readiness view and `verify` agree on every task's state at every
step of a random history, and the views ignore exactly the task events the write side refuses;
the readiness fold's fast paths give what its general rule gives.

A history is a small graph (one to three tasks, random dependencies, tiers, attempt limits) and a
random run of every event that touches a task: run and preflight dispatches (also naming a wrong
attempt), starts, results (success, partial, failure; retryable or not; a quality score; from
the holder or from a stale attempt or node), losses, cancels, approvals, rejections, a graph
cancel, generated tasks (depending on any tasks, holding others back with ``before``, or
reusing an id that exists), and, for a backlog graph, the decider taking it (or taking it
twice). Every event goes into the log (a stale report can reach the stream); the write side
folds those its checks accept, as it would append them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import InvariantViolation
from orchestrator.replay.verify import Verifier
from orchestrator.writeside.holdback import Hold, held_back
from orchestrator.writeside.taskrules import (
    TaskRecord,
    check_approval,
    check_cancel,
    check_dispatch,
    check_holder,
    check_live,
    check_taken,
    effective_records,
    evolve_task,
)
from projections.readiness.fold import ReadinessView, evolve_readiness
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0

NODES = ("n1", "n2")
HELD = ("dispatched", "running")
G = "g"


class Snapshot(msgspec.Struct, frozen=True):
    """What the three sides are compared on, per task."""

    state: str
    attempt: int
    lost: int
    node: str | None  # the holder's node (None unless held)


def _snap(state: str, attempt: int, lost: int, node: str | None) -> Snapshot:
    coarse = "waiting" if state in ("pending", "ready", "retry") else state
    return Snapshot(coarse, attempt, lost, node if coarse in HELD else None)


# --- the three sides -----------------------------------------------------------------------


class WriteSide:
    """The write side's records and checks, as `orchestrator.application` uses them."""

    def __init__(self, specs: tuple[rec.TaskSpec, ...], backlog: bool = False) -> None:
        self.records = {s.id: TaskRecord(graph_id=G, spec=s) for s in specs}
        self.backlog, self.taken = backlog, False
        self.cancelled_by: str | None = None
        self.cancelled_at = 0
        self.holds: list[Hold] = []
        self.seq = 1  # the log position of the last event (the submit is 1)

    def effective(self) -> dict[str, TaskRecord]:
        return effective_records(held_back(self.records, self.holds, self.cancelled_at), self.cancelled_by)

    def accepts(self, e: ev.AnyEvent) -> bool:
        if isinstance(e, ev.GraphCancelled):
            return self.cancelled_by is None
        if isinstance(e, ev.TasksGenerated):
            return True  # the decider appends it; the graph takes the tasks it does not have yet
        if isinstance(e, ev.BacklogItemTaken):
            return check_taken(self.backlog, self.taken, G)
        eff = self.effective()
        r = eff[e.task_id]
        try:
            match e:
                case ev.TaskDispatched():
                    check_live(self.backlog, self.taken, G)
                    check_dispatch(r, {d: eff[d] for d in r.spec.depends_on}, e)
                case ev.TaskStarted() | ev.TaskCompleted() | ev.TaskLost():
                    check_holder(r, e)
                case ev.TaskCancelled():
                    check_cancel(r)
                case ev.TaskApproved() | ev.TaskRejected():
                    check_approval(r, e.by)
        except InvariantViolation:
            return False
        return True

    def apply(self, e: ev.AnyEvent) -> bool:
        self.seq += 1
        ok = self.accepts(e)
        if ok and isinstance(e, ev.GraphCancelled):
            self.cancelled_by, self.cancelled_at = e.by, self.seq
        elif isinstance(e, ev.BacklogItemTaken):
            self.taken = self.taken or ok
        elif isinstance(e, ev.TasksGenerated):
            for x in e.generated:
                if x.spec.id not in self.records:
                    self.records[x.spec.id] = TaskRecord(graph_id=G, spec=x.spec)
                    self.holds += [Hold(task=x.spec.id, before=x.before, at=self.seq)] if x.before else []
        elif ok:
            self.records[e.task_id] = evolve_task(self.records[e.task_id], e, self.seq)
        return ok

    def snapshot(self) -> dict[str, Snapshot]:
        return {t: _snap(r.state, r.attempt, r.lost, r.node_id) for t, r in self.effective().items()}


class ReadSide:
    """The readiness view, folded from the whole log (``fast=False``: without its fast paths)."""

    def __init__(self, head: ev.GraphSubmitted, fast: bool = True) -> None:
        self.fast = fast
        self.view = evolve_readiness(ReadinessView(), head, 1)
        self.seq = 1

    def apply(self, e: ev.AnyEvent) -> bool:
        before = len(self.view.ignored)
        self.seq += 1
        evolve_readiness(self.view, e, self.seq, fast=self.fast)
        return len(self.view.ignored) == before

    def snapshot(self) -> dict[str, Snapshot]:
        return {t: _snap(v.state, v.attempt, v.lost, v.node) for (_, t), v in self.view.tasks.items()}


class Checker:
    """`verify`'s fold of the whole log: its judgement of each task."""

    def __init__(self, head: ev.GraphSubmitted) -> None:
        self.v = Verifier()
        self.v.apply(1, head)
        self.seq = 1

    def apply(self, e: ev.AnyEvent) -> bool:
        """False when verify records a violation for ``e``."""
        before = len(self.v.violations)
        self.seq += 1
        self.v.apply(self.seq, e)
        return len(self.v.violations) == before

    def snapshot(self) -> dict[str, Snapshot]:
        return {t: _snap(*self.v.judgement(G, t)) for t in self.v.graphs[G]}


# --- histories -----------------------------------------------------------------------------

TASK = st.tuples(st.sampled_from([1, 1, 2, 3]), st.integers(1, 3), st.integers(0, 3))
MOVE = st.tuples(st.integers(0, 21), st.integers(0, 2), st.integers(0, 11))


def _expanded(moves: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Kinds 13 and 17 stand for a whole attempt: its dispatch and loss, or its dispatch, start
    and result (so that a history reaches quarantines and last attempts)."""
    out: list[tuple[int, int, int]] = []
    for kind, task_no, v in moves:
        if kind == 13:
            out += [(0, task_no, 0), (12, task_no, 0)]
        elif kind == 17:
            out += [(0, task_no, 0), (5, task_no, 0), (7, task_no, v)]
        else:
            out.append((kind, task_no, v))
    return out


def _specs(params: list[tuple[int, int, int]]) -> tuple[rec.TaskSpec, ...]:
    out = []
    for i, (tier, attempts, mask) in enumerate(params):
        deps = tuple(f"t{j}" for j in range(i) if mask >> j & 1)
        pre = "check" if tier == 2 else None
        out.append(
            rec.TaskSpec(id=f"t{i}", command="run", depends_on=deps, tier=tier, max_attempts=attempts, preflight=pre)
        )
    return tuple(out)


class Generator:
    """Turns moves into events: mostly plausible ones (from the attempt holding the task, naming
    the next attempt), a third from a stale attempt or another node, or naming a wrong attempt."""

    def __init__(self) -> None:
        self.i = 0
        self.generated = 0

    def event(self, move: tuple[int, int, int], tasks: dict[str, TaskRecord]) -> ev.AnyEvent:
        """The event of one move."""
        kind, task_no, v = move
        self.i += 1
        tid = list(tasks)[task_no % len(tasks)]
        r = tasks[tid]
        node, attempt = r.node_id or NODES[v % 2], r.attempt
        if v % 6 == 1:
            node = NODES[(NODES.index(node) + 1) % 2]
        elif v % 6 == 2:
            attempt -= 1
        if kind == 20:
            return self.generation(task_no, v, list(tasks))
        if kind == 21:
            return ev.BacklogItemTaken(event_id=f"e{self.i}", occurred_at=T0 + timedelta(seconds=self.i), graph_id=G,
                                       priority=5, tasks=len(tasks), reason="nothing else to do")  # fmt: skip
        base = dict(event_id=f"e{self.i}", occurred_at=T0 + timedelta(seconds=self.i), graph_id=G, task_id=tid)
        who = dict(node_id=node, attempt=attempt)
        cands = (rec.Candidate(node_id=node, score=1.0, reason="free"),)
        match kind:
            case 0 | 1 | 2 | 3:
                nxt = attempt + (2 if v % 6 == 3 else 1)
                return ev.TaskDispatched(**base, node_id=node, attempt=nxt, command="run", candidates=cands)
            case 4:
                phase = "preflight"
                return ev.TaskDispatched(
                    **base, node_id=node, attempt=attempt, command="check", candidates=cands, phase=phase
                )
            case 5 | 6 | 18:
                return ev.TaskStarted(**base, **who)
            case 7 | 8 | 9 | 10 | 11 | 19:
                return _result(base, who, v, "preflight" if kind == 11 else "run")
            case 12:
                return ev.TaskLost(**base, **who, reason="agent gone")
            case 14 if v >= 6:
                return ev.TaskDispatched(**base, node_id=node, attempt=attempt + 1, command="run", candidates=cands)
            case _:
                return _human(base, kind, v)


    def generation(self, task_no: int, v: int, ids: list[str]) -> ev.TasksGenerated:
        """A generated task depending on the tasks ``v``'s bits pick, holding back one task (or
        two, or none); ``v`` 11 reuses an id the graph has."""
        self.generated += 1
        tid = ids[0] if v == 11 else f"g{self.generated}"
        deps = tuple(d for j, d in enumerate(ids) if v >> j & 1 and d != tid)[:2]
        before = (ids[task_no % len(ids)], ids[-1]) if v % 3 == 0 else ((ids[task_no % len(ids)],) if v % 3 else ())
        before = tuple(b for b in dict.fromkeys(before) if b != tid)
        spec = rec.TaskSpec(id=tid, command="run", depends_on=deps, max_attempts=2)
        made = rec.GeneratedTask(spec=spec, rule="r", trigger_task=ids[0], trigger_outcome="success", trigger_seq=0,
                                reason="follow-up", before=before)  # fmt: skip
        return ev.TasksGenerated(event_id=f"e{self.i}", occurred_at=T0 + timedelta(seconds=self.i), graph_id=G,
                                 generated=(made,))  # fmt: skip


def _result(base: dict[str, Any], who: dict[str, Any], v: int, phase: str) -> ev.TaskCompleted:
    if phase == "preflight":
        outcome = "failure" if v % 2 else "success"
        return ev.TaskCompleted(**base, **who, outcome=outcome, phase="preflight", error="no")
    outcome = ("success", "partial", "failure", "failure")[v % 4]
    return ev.TaskCompleted(
        **base,
        **who,
        outcome=outcome,
        quality=(None, 0.1, 0.9)[v % 3],  # 0.1: a success the quality threshold judges partial
        retryable=v < 9,
        error="timed out after 5 s" if v == 10 else ("exit 1" if outcome != "success" else ""),
    )


def _human(base: dict[str, Any], kind: int, v: int) -> ev.AnyEvent:
    """A cancel (kind 14), an approval or rejection (15, by nobody when ``v`` is 0), or (16) a
    second approval or the graph's cancel."""
    if kind == 14:
        return ev.TaskCancelled(**base, by="ana")
    if kind == 15:
        return (ev.TaskApproved, ev.TaskApproved, ev.TaskRejected)[v % 3](**base, by="ana" if v else " ")
    if v < 11:
        return ev.TaskApproved(**base, by="bo")
    return ev.GraphCancelled(event_id=base["event_id"], occurred_at=base["occurred_at"], graph_id=G, by="ana")


def run_history(
    params: list[tuple[int, int, int]], moves: list[tuple[int, int, int]], backlog: bool = False
) -> list[str]:
    """Every disagreement of the three sides along the history (empty: they agree throughout);
    ``backlog``: the graph waits in the backlog until the decider takes it."""
    specs = _specs(params)
    priority = 5 if backlog else None
    head = ev.GraphSubmitted(event_id="s", occurred_at=T0, graph_id=G, tasks=specs, backlog_priority=priority)
    write, read, check, gen = WriteSide(specs, backlog), ReadSide(head), Checker(head), Generator()
    general = ReadSide(head, fast=False)
    found: list[str] = []
    history: list[str] = []
    for move in _expanded(moves):
        e = gen.event(move, write.effective())
        history.append(_describe(e))
        w_ok, r_ok, c_ok = write.apply(e), read.apply(e), check.apply(e)
        general.apply(e)
        if (general.view.tasks, general.view.graphs, general.view.ignored) != (
            read.view.tasks,
            read.view.graphs,
            read.view.ignored,
        ):
            found.append(f"{history}: readiness's fast paths differ from its general rule")
        task_event = not isinstance(e, ev.GraphCancelled | ev.TasksGenerated)
        if isinstance(e, ev.BacklogItemTaken) and w_ok != r_ok:
            found.append(f"{history}: write side {'accepts' if w_ok else 'refuses'} the take, readiness "
                         f"{'applies' if r_ok else 'ignores'} it")  # fmt: skip
        task_event = task_event and not isinstance(e, ev.BacklogItemTaken)
        if task_event and w_ok != r_ok:
            found.append(
                f"{history}: write side {'accepts' if w_ok else 'refuses'}, "
                f"readiness {'applies' if r_ok else 'ignores'}"
            )
        if _is_result(e) and w_ok != c_ok:
            found.append(
                f"{history}: write side {'accepts' if w_ok else 'refuses'}, verify {'passes' if c_ok else 'flags'}"
            )
        ws, rs, cs = write.snapshot(), read.snapshot(), check.snapshot()
        if not ws == rs == cs:
            found.append(f"{history}: write {ws} read {rs} verify {cs}")
        if found:
            return found
    return found


def _is_result(e: ev.AnyEvent) -> bool:
    """A loss or a run's result: what verify fences (I3, I5)."""
    return isinstance(e, ev.TaskLost) or (isinstance(e, ev.TaskCompleted) and e.phase == "run")


def _describe(e: ev.AnyEvent) -> str:
    name = type(e).__name__
    if isinstance(e, ev.GraphCancelled | ev.BacklogItemTaken):
        return name
    if isinstance(e, ev.TasksGenerated):
        x = e.generated[0]
        return f"{name}({x.spec.id} after {list(x.spec.depends_on)} before {list(x.before)})"
    extra = ""
    if isinstance(e, ev.TaskDispatched | ev.TaskStarted | ev.TaskCompleted | ev.TaskLost):
        extra = f" {e.node_id}#{e.attempt}"
    if isinstance(e, ev.TaskDispatched | ev.TaskCompleted) and e.phase == "preflight":
        extra += " preflight"
    if isinstance(e, ev.TaskCompleted):
        extra += f" {e.outcome}{'' if e.retryable else ' not-retryable'}"
    return f"{name}({e.task_id}{extra})"


@settings(max_examples=3000, deadline=None)
@given(st.lists(TASK, min_size=1, max_size=3), st.lists(MOVE, max_size=30), st.booleans())
def test_write_side_readiness_and_verify_agree_at_every_step(params, moves, backlog):
    assert run_history(params, moves, backlog) == []


# --- what the generated-work histories found (each failed before the fix) ------------------------


def test_a_task_generated_into_a_cancelled_graph_is_cancelled_everywhere():
    assert run_history([(1, 1, 0)], [(16, 0, 11), (20, 0, 0)]) == []  # graph cancelled, then g1 generated


def test_a_hold_that_would_close_a_cycle_is_not_taken():
    # g2 depends on g1 and is to hold g1 back: holding it would deadlock both, so nobody holds it
    assert run_history([(1, 1, 0)], [(20, 0, 1), (20, 0, 3), (14, 2, 0)]) == []


def test_the_write_side_holds_a_waiting_task_back_for_its_generated_task():
    # g1 holds t1 back while t1 still waits for t0; cancelling g1 then cancels t1 on every side
    assert run_history([(1, 1, 0), (1, 1, 1)], [(20, 1, 0), (14, 2, 0)]) == []


def test_a_dispatch_before_the_backlog_graph_is_taken_changes_nothing_anywhere():
    assert run_history([(1, 1, 0)], [(0, 0, 0)], backlog=True) == []  # verify used to move the task


def test_a_task_generated_into_a_backlog_graph_waits_until_the_graph_is_taken():
    # readiness used to make it ready (and apply its dispatch) while the graph still waited
    assert run_history([(1, 1, 0), (1, 1, 0)], [(20, 0, 0), (0, 2, 0), (21, 0, 0), (0, 2, 0)], backlog=True) == []

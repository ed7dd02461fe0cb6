"""The backlog without a server: the fold holds a backlog graph, the pure choice takes the right
one only when idle under full autonomy; replay re-runs generated-work decisions; metrics count them."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from orchestrator.decision.backlog import choose, idle, take, waiting
from orchestrator.decision.generate import generate
from orchestrator.graphs.graphfile import build_graph
from orchestrator.graphs.submission import graph_events
from orchestrator.replay.check import check
from orchestrator.reports.metrics import compute_metrics
from projections.readiness.fold import GraphView, ReadinessView, evolve_readiness
from schemas import codec
from schemas import events as ev
from schemas.subjects import route
from tests.unit.builders import T0, at, completed, dispatched


def graph(gid: str, priority: int | None, seq: int, **counts: int) -> GraphView:
    return GraphView(graph_id=gid, total=2, backlog_priority=priority, graph_seq=seq, counts=counts)


@pytest.mark.parametrize(
    ("graphs", "autonomy", "expected"),
    [
        ([], "full", None),
        ([graph("a", 1, 5)], "full", "a"),
        ([graph("a", 1, 5), graph("b", 3, 9)], "full", "b"),  # highest priority first
        ([graph("a", 2, 9), graph("b", 2, 5)], "full", "b"),  # then the oldest
        ([graph("a", 1, 5), graph("live", None, 1, ready=1)], "full", None),  # something is ready
        ([graph("a", 1, 5), graph("live", None, 1, running=1)], "full", None),  # something runs
        ([graph("a", 1, 5), graph("live", None, 1, pending=3, succeeded=1)], "full", "a"),  # only blocked work
        ([graph("a", 1, 5)], "cautious", None),  # autonomy not full
        ([graph("a", 1, 5)], "supervised", None),
        ([msgspec.structs.replace(graph("a", 1, 5), backlog_taken=True)], "full", None),  # taken already
    ],
)
def test_choice(graphs: list[GraphView], autonomy: str, expected: str | None) -> None:
    by_id = {g.graph_id: g for g in graphs}
    got = choose(by_id, autonomy)
    assert (got.graph_id if got else None) == expected


def test_waiting_order_and_idle() -> None:
    gs = {g.graph_id: g for g in (graph("a", 1, 5), graph("b", 3, 9), graph("c", None, 2), graph("d", 3, 4))}
    assert [g.graph_id for g in waiting(gs)] == ["d", "b", "a"]
    assert idle(gs) and not idle({"x": graph("x", None, 1, dispatched=1)})


def doc(gid: str, *tasks: tuple[str, tuple[str, ...], int]) -> dict[str, Any]:
    return {
        "graph": {"id": gid},
        "tasks": [{"id": t, "command": "true", "depends_on": list(d), "tier": tier} for t, d, tier in tasks],
    }


def test_a_backlog_graph_waits_until_taken_then_runs_like_any_graph() -> None:
    spec = dataclasses.replace(
        build_graph("f.toml", doc("later", ("a", (), 1), ("b", ("a",), 1), ("gate", (), 3))), backlog_priority=4
    )
    view, seq = ReadinessView(), 0
    for e in graph_events(spec, T0, "s"):
        seq += 1
        view = evolve_readiness(view, e, seq)
    assert {t.task_id: t.state for t in view.tasks.values()} == {"a": "pending", "b": "pending", "gate": "pending"}
    assert view.tasks[("later", "a")].reason == "in the backlog (priority 4)" and not view.ready
    decision = take(view.graphs, "full", {"readiness": seq}, at(5), "d1", "v")
    assert decision is not None and decision.expected_seq == 0
    e = decision.event
    assert (e.graph_id, e.priority, e.tasks) == ("later", 4, 3) and "took later (priority 4, 3 tasks)" in e.reason
    assert route(e)[1] == "ev.backlog.later.BacklogItemTaken"
    view = evolve_readiness(view, e, seq + 1)
    states = {t.task_id: (t.state, t.awaiting_approval) for t in view.tasks.values()}
    assert states == {"a": ("ready", False), "b": ("pending", False), "gate": ("pending", True)}
    assert view.graphs["later"].backlog_taken
    assert take(view.graphs, "full", {"readiness": seq + 1}, at(6)) is None  # taken once


class Msg:
    def __init__(self, seq: int, e: ev.AnyEvent) -> None:
        self.seq, self.subject, self.data = seq, route(e)[1], codec.encode(e)


RULED = {
    "graph": {"id": "g"},
    "tasks": [{"id": "types", "command": "true", "type": "schema"}],
    "rules": [{"name": "it", "when": {"type": "schema"}, "task": {"id": "{task}-it", "command": "it"}}],
}


def _ruled_log() -> tuple[list[ev.AnyEvent], ReadinessView]:
    events: list[ev.AnyEvent] = [*graph_events(build_graph("f.toml", RULED), T0, "s")]
    events += [dispatched("g", "types", "n1"), completed("g", "types", "n1")]
    view = ReadinessView()
    for i, e in enumerate(events, start=1):
        view = evolve_readiness(view, e, i)
    [g] = generate(view.tasks, view.graphs, {"readiness": len(events)}, at(9), "d1", "v1")
    return [*events, g.event], view


def test_replay_check_reproduces_a_generation_and_names_a_tampered_one() -> None:
    events, _ = _ruled_log()
    report = check([Msg(i, e) for i, e in enumerate(events, start=1)])
    # the log's dispatch is hand-made (no recorded views), so only the generation reproduces
    assert (report["generations"], report["decisions"], report["reproduced"]) == (1, 2, 1)
    assert [m["task"] for m in report["mismatches"]] == ["types"]
    forged = msgspec.structs.replace(events[-1], generated=())
    bad = check([Msg(i, e) for i, e in enumerate([*events[:-1], forged], start=1)])
    [m] = [m for m in bad["mismatches"] if m["task"] == "(generated tasks)"]
    assert m["differences"][0]["field"] == "generated"


def test_metrics_count_generated_and_backlog_tasks() -> None:
    events, _ = _ruled_log()
    taken = ev.BacklogItemTaken(event_id="t", occurred_at=at(20), graph_id="later", priority=1, tasks=5, reason="r")
    m = compute_metrics([(i, e.occurred_at, e) for i, e in enumerate([*events, taken], start=1)])
    assert (m["tasks_generated"], m["tasks_generated_by_rules"], m["tasks_from_backlog"]) == (6, 1, 5)
    assert m["first_attempt_success_rate"] == 1.0


def test_a_quiet_graph_is_skipped_until_its_state_moves_and_decisions_equal_the_pure_function() -> None:
    from orchestrator.decision.decide import DeciderConfig, Views
    from orchestrator.processes.followup import Quiet, plan

    d = {
        **RULED,
        "tasks": [*RULED["tasks"], {"id": "later", "command": "true", "type": "schema", "depends_on": ["types"]}],
    }
    d["rules"] = [{**RULED["rules"][0], "unless": {"id": "types"}}]  # 'types' exists: covers every trigger
    view, seq = ReadinessView(), 0
    events: list[ev.AnyEvent] = [*graph_events(build_graph("f.toml", d), T0, "s")]
    events += [dispatched("g", "types", "n1"), completed("g", "types", "n1")]
    for e in events:
        seq += 1
        view = evolve_readiness(view, e, seq)
    quiet = Quiet()
    views = Views(tasks=view.tasks, nodes={}, seqs={"readiness": seq})
    assert plan(views, view.graphs, at(9), DeciderConfig(), quiet).generations == []
    assert quiet.live(view.graphs) == {}  # judged: nothing wanted at this state
    view = evolve_readiness(view, dispatched("g", "later", "n1", t=10), seq + 1)
    assert list(quiet.live(view.graphs)) == ["g"]  # a task changed state: judged again
    full = generate(view.tasks, view.graphs, {"readiness": seq + 1}, at(11))
    got = plan(
        Views(tasks=view.tasks, nodes={}, seqs={"readiness": seq + 1}), view.graphs, at(11), DeciderConfig(), quiet
    )
    assert got.generations == full == []


def test_why_and_summaries_say_backlog_and_generation_in_words() -> None:
    from orchestrator.decision.decide import DeciderConfig, Views
    from orchestrator.decision.why import why
    from orchestrator.reports.explain import summary

    spec = dataclasses.replace(build_graph("f.toml", doc("later", ("a", (), 1))), backlog_priority=2)
    view = ReadinessView()
    for i, e in enumerate(graph_events(spec, T0, "s"), start=1):
        view = evolve_readiness(view, e, i)
    t = view.tasks[("later", "a")]
    head = why(t, Views(tasks=view.tasks, nodes={}), at(1), DeciderConfig())["headline"]
    assert head.startswith("in the backlog (priority 2): taken when nothing is ready")
    decision = take(view.graphs, "full", {}, at(2))
    assert decision is not None and summary(decision.event) == decision.event.reason
    events, _ = _ruled_log()
    assert summary(events[-1]).startswith("types-it generated by rule it (trigger seq")

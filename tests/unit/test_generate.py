"""Follow-up rules without a server: matching, template expansion, the guard, the limit, the fold.

A graph document is validated by `build_graph` (rules included), submitted into the readiness
fold, tasks are run by events, and the pure `generate` is asked what it would add.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.decision.generate import expand_task, generate, selects
from orchestrator.graphs.graphfile import build_graph
from orchestrator.graphs.submission import graph_events
from projections.readiness.fold import ReadinessView, TaskView, evolve_readiness
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from schemas.subjects import route
from tests.unit.builders import T0, at, completed, dispatched


def doc(rules: list[dict[str, Any]], *tasks: dict[str, Any], limit: int | None = None) -> dict[str, Any]:
    graph: dict[str, Any] = {"id": "g"}
    if limit is not None:
        graph["generation_limit"] = limit
    return {"graph": graph, "tasks": list(tasks), "rules": rules}


def task(tid: str, *deps: str, type: str = "build", **extra: Any) -> dict[str, Any]:
    return {"id": tid, "command": f"run {tid}", "depends_on": list(deps), "type": type, **extra}


IT_RULE = {
    "name": "it",
    "on": ["success"],
    "when": {"type": "schema"},
    "unless": {"type": "integration", "depends_on": "{task}"},
    "task": {"id": "{task}-it", "title": "Integration tests for {title}", "command": "it {task} {outcome}"},
}


class World:
    """A readiness view fed event by event, with the stream sequence counted."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.view = ReadinessView()
        self.seq = 0
        spec = build_graph("f.toml", d)
        for e in graph_events(spec, T0, "s:g"):
            self.feed(e)

    def feed(self, e: Any) -> int:
        self.seq += 1
        self.view = evolve_readiness(self.view, e, self.seq)
        self.view.touched.clear()
        return self.seq

    def run(self, tid: str, outcome: str = "success", attempt: int = 1) -> None:
        self.feed(dispatched("g", tid, "n1", attempt))
        self.feed(completed("g", tid, "n1", outcome, attempt))

    def decide(self, t: float = 10) -> list[Any]:
        return generate(self.view.tasks, self.view.graphs, {"readiness": self.seq}, at(t), "d1", "v")

    def task(self, tid: str) -> TaskView:
        return self.view.tasks[("g", tid)]


def test_a_matching_success_generates_one_task_with_rule_trigger_and_reason() -> None:
    w = World(doc([IT_RULE], task("types", type="schema"), task("api", "types")))
    assert w.decide() == []  # nothing finished yet
    w.run("types")
    [g] = w.decide()
    e = g.event
    assert isinstance(e, ev.TasksGenerated)
    [x] = e.generated
    assert (x.spec.id, x.spec.title, x.spec.command) == ("types-it", "Integration tests for ", "it types success")
    assert x.spec.depends_on == ("types",)
    assert (x.rule, x.trigger_task, x.trigger_outcome) == ("it", "types", "success")
    assert x.trigger_seq == w.task("types").last_seq
    assert "types ended success" in x.reason and "no task matches type integration" in x.reason
    assert (g.expected_seq, g.version) == (1, 2)  # guarded on the graph's subject: submitted at seq 1
    assert route(e)[1] == "ev.graph.g.TasksGenerated"


def test_the_fold_adds_the_task_and_the_rule_does_not_fire_twice() -> None:
    w = World(doc([IT_RULE], task("types", type="schema"), task("api", "types")))
    w.run("types")
    [g] = w.decide()
    w.feed(g.event)
    new = w.task("types-it")
    assert new.state == "ready" and new.origin.startswith("rule it:")
    graph = w.view.graphs["g"]
    assert (graph.total, graph.generated, graph.graph_version, graph.graph_seq) == (3, 1, 2, w.seq)
    assert "types-it" in w.task("types").dependents
    assert w.decide() == []  # fired once: the same views decide nothing more


def test_two_deciders_on_the_same_views_make_the_same_guarded_decision() -> None:
    w = World(doc([IT_RULE], task("types", type="schema")))
    w.run("types")
    a, b = w.decide(), w.decide()
    assert codec.encode(a[0].event) == codec.encode(b[0].event)
    assert a[0].expected_seq == b[0].expected_seq  # the server accepts one of them only


@pytest.mark.parametrize(
    ("rule_changes", "outcome", "extra_tasks", "fires"),
    [
        ({}, "success", [], True),
        ({}, "failure", [], False),  # on success only
        ({"on": ["failure"]}, "failure", [], True),
        ({"on": "any"}, "failure", [], True),
        ({"when": {"type": "other"}}, "success", [], False),
        ({"when": {"id": "ty*"}}, "success", [], True),
        ({"when": {"id": "x*"}}, "success", [], False),
        ({}, "success", [task("cover", "types", type="integration")], False),  # an integration test covers it
        ({}, "success", [task("other-it", type="integration")], True),  # one that does not depend on it
        ({"unless": {"id": "types-*"}}, "success", [task("types-it", type="build")], False),
    ],
)
def test_rule_matching(rule_changes: dict[str, Any], outcome: str, extra_tasks: list[Any], fires: bool) -> None:
    rule = {**IT_RULE, **rule_changes}
    if rule_changes.get("on") and "failure" in str(rule_changes["on"]):
        rule["task"] = {**IT_RULE["task"], "depends_on": []}
    w = World(doc([rule], task("types", type="schema"), *extra_tasks))
    w.run("types", outcome)
    assert bool(w.decide()) is fires


def test_a_task_with_the_templates_id_already_there_is_not_generated_again() -> None:
    rule = {**IT_RULE, "unless": None}
    del rule["unless"]
    w = World(doc([rule], task("types", type="schema"), task("types-it", type="build")))
    w.run("types")
    assert w.decide() == []


def test_the_limit_stops_generation_with_one_event() -> None:
    rule = {"name": "each", "when": {"id": "t*"}, "task": {"id": "{task}-f{n}", "command": "f {n}"}}
    w = World(doc([rule], task("t1"), task("t2"), task("t3"), limit=2))
    for t in ("t1", "t2", "t3"):
        w.run(t)
    [g] = w.decide()
    assert [x.spec.id for x in g.event.generated] == ["t1-f1", "t2-f2"]  # {n} counts per graph
    w.feed(g.event)
    [lim] = w.decide()
    assert isinstance(lim.event, ev.GenerationLimitReached)
    assert (lim.event.limit, lim.event.generated) == (2, 2) and "limit 2" in lim.event.reason
    w.feed(lim.event)
    assert w.view.graphs["g"].limit_reached
    w.run("t1-f1")  # its own follow-up would match "t*", but the limit holds
    assert w.decide() == []


def test_a_zero_limit_generates_nothing() -> None:
    rule = {"name": "each", "task": {"command": "f"}}
    w = World(doc([rule], task("t1"), limit=0))
    w.run("t1")
    [lim] = w.decide()
    assert isinstance(lim.event, ev.GenerationLimitReached)


def test_a_generated_task_waits_for_its_dependencies_and_is_cancelled_when_one_failed() -> None:
    rule = {
        "name": "after",
        "when": {"id": "a"},
        "on": "any",
        "task": {"id": "{task}-x", "command": "x", "depends_on": ["{task}", "b"]},
    }
    w = World(doc([rule], task("a"), task("b")))
    w.run("a")
    [g] = w.decide()
    w.feed(g.event)
    assert (w.task("a-x").state, w.task("a-x").waiting_for) == ("pending", ("b",))
    w.run("b")
    assert w.task("a-x").state == "ready"
    w2 = World(doc([rule], task("a"), task("b")))
    w2.run("b", "failure")
    w2.run("a")
    [g2] = w2.decide()
    w2.feed(g2.event)
    assert w2.task("a-x").state == "cancelled" and "b failed" in w2.task("a-x").reason


def test_a_finished_graph_reopens_when_a_task_is_generated() -> None:
    w = World(doc([IT_RULE], task("types", type="schema")))
    w.run("types")
    assert w.view.graphs["g"].done and w.view.graphs["g"].finished_at is not None
    [g] = w.decide()
    w.feed(g.event)
    assert not w.view.graphs["g"].done and w.view.graphs["g"].finished_at is None


def test_cancelled_graphs_generate_nothing() -> None:
    w = World(doc([IT_RULE], task("types", type="schema"), task("later", "types")))
    w.run("types")
    w.feed(ev.GraphCancelled(event_id="x", occurred_at=at(5), graph_id="g", by="ana"))
    assert w.decide() == []


@pytest.mark.parametrize(
    ("selector", "tid", "deps", "match"),
    [
        (rec.TaskSelector(), "a", (), True),
        (rec.TaskSelector(type="build"), "a", (), True),
        (rec.TaskSelector(type="test"), "a", (), False),
        (rec.TaskSelector(id="T-00?"), "T-001", (), True),
        (rec.TaskSelector(id="T-00?"), "T-010", (), False),
        (rec.TaskSelector(depends_on="{task}"), "a", ("trig",), True),
        (rec.TaskSelector(depends_on="{task}"), "a", ("other",), False),
        (rec.TaskSelector(labels={"os": "linux"}), "a", (), False),
    ],
)
def test_selectors(selector: rec.TaskSelector, tid: str, deps: tuple[str, ...], match: bool) -> None:
    t = TaskView(graph_id="g", task_id=tid, command="c", state="pending", type="build", depends_on=deps)
    assert selects(selector, t, {"task": "trig"}) is match


def test_expansion_fills_known_placeholders_and_keeps_shell_braces() -> None:
    rule = rec.FollowUpRule(
        name="r",
        task=rec.TaskSpec(
            id="{task}-{rule}-{n}", command="echo ${HOME} {graph}/{task}", depends_on=("{task}", "{task}")
        ),
    )
    spec = expand_task(rule, {"task": "a", "rule": "r", "n": "3", "graph": "g"})
    assert (spec.id, spec.command, spec.depends_on) == ("a-r-3", "echo ${HOME} g/a", ("a",))


BEFORE_RULE = {
    "name": "it",
    "when": {"type": "schema"},
    "before": ["deploy", "docs", "free", "up"],
    "task": {"id": "{task}-it", "command": "it", "depends_on": ["{task}", "build"]},
}


def before_doc() -> dict[str, Any]:
    # up → build → (deploy, docs); free alone; types-it will depend on types and build
    return doc(
        [BEFORE_RULE],
        task("types", type="schema"),
        task("up"),
        task("build", "up"),
        task("deploy", "build"),
        task("docs", "build"),
        task("free"),
    )


def before_world() -> World:
    return World(before_doc())


def test_before_holds_back_unreleased_tasks_only_and_never_makes_a_cycle() -> None:
    w = before_world()
    w.run("types")
    [g] = w.decide()
    [x] = g.event.generated
    # deploy and docs wait for build (not released): held; free is ready (released); up is upstream
    assert x.before == ("deploy", "docs") and "deploy, docs wait for it" in x.reason
    w.feed(g.event)
    assert w.task("deploy").depends_on == ("build", "types-it") and "types-it" in w.task("deploy").waiting_for
    assert w.task("types-it").dependents == ("deploy", "docs")
    assert w.task("free").depends_on == ()
    w.run("up")
    w.run("build")
    assert w.task("deploy").state == "pending" and w.task("deploy").waiting_for == ("types-it",)
    w.run("types-it")
    assert w.task("deploy").state == "ready"


def test_a_failed_generated_task_cancels_what_it_held_back_and_verify_agrees() -> None:
    from orchestrator.replay.verify import verify

    w = before_world()
    events: list[Any] = []
    original = w.feed

    def record(e: Any) -> int:
        events.append(e)
        return original(e)

    w.feed = record  # type: ignore[method-assign]
    w.run("types")
    [g] = w.decide()
    w.feed(g.event)
    for t in ("up", "free", "build"):
        w.run(t)
    w.run("types-it", "failure")
    assert w.task("deploy").state == w.task("docs").state == "cancelled"
    assert w.view.graphs["g"].done
    report = verify(list(enumerate([*_submitted(), *events], start=1)))
    # (the builders' dispatches carry no candidates: I6 is not what this log is about)
    assert [v for v in report["violations"] if v["invariant"] != "I6"] == []
    assert report["checked"]["I3"]["checks"] > 0


def _submitted() -> list[Any]:
    spec = build_graph("f.toml", before_doc())
    return list(graph_events(spec, T0, "s:g"))


def test_verify_knows_a_held_back_task_waits_for_the_generated_one() -> None:
    from orchestrator.replay.verify import verify
    from tests.unit.builders import started

    w = before_world()
    w.run("types")
    [g] = w.decide()
    log: list[Any] = [*_submitted(), dispatched("g", "types", "n1"), completed("g", "types", "n1"), g.event]
    for t in ("up", "build"):
        log += [dispatched("g", t, "n1"), started("g", t, "n1"), completed("g", t, "n1")]
    log += [dispatched("g", "deploy", "n1"), started("g", "deploy", "n1")]  # forged: types-it has not run
    report = verify(list(enumerate(log, start=1)))
    [v] = [v for v in report["violations"] if v["invariant"] == "I2"]
    assert v["task"] == "deploy" and "types-it" in v["message"]


def test_one_event_carries_at_most_per_event_tasks_and_the_rest_come_next_round() -> None:
    from orchestrator.decision import generate as gen

    rule = {"name": "each", "when": {"id": "t*"}, "task": {"id": "{task}-f", "command": "f"}}
    w = World(doc([rule], *(task(f"t{i}") for i in range(5))))
    for i in range(5):
        w.run(f"t{i}")
    old, gen.PER_EVENT = gen.PER_EVENT, 2
    try:
        firsts = []
        while decided := w.decide():
            [g] = decided
            firsts.append([x.spec.id for x in g.event.generated])
            w.feed(g.event)
    finally:
        gen.PER_EVENT = old
    assert firsts == [["t0-f", "t1-f"], ["t2-f", "t3-f"], ["t4-f"]]


def test_a_generated_task_gets_its_graphs_source_tree_and_its_declared_outputs() -> None:
    import msgspec

    rule = {**IT_RULE, "task": {**IT_RULE["task"], "outputs": ["it.xml"]}}
    w = World(doc([rule], task("types", type="schema"), task("api", "types")))
    tree = "ab" * 32
    w.view.tasks[("g", "types")] = msgspec.structs.replace(w.task("types"), source_tree=tree)
    w.run("types")
    [g] = w.decide()
    w.feed(g.event)
    new = w.task("types-it")
    assert (new.source_tree, new.output_decls) == (tree, ("it.xml",))

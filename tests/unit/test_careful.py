"""Careful mode (`orchestrator.decision.careful`): its thresholds, the hysteresis, one event per
episode each way, shortest estimate first while it lasts, and a whole episode re-derived by replay."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from orchestrator.decision.careful import NOTE, CarefulConfig, careful_now, judge
from orchestrator.decision.config import decider_config
from orchestrator.decision.decide import DeciderConfig, Views, decide_round
from orchestrator.decision.pause import Action, Stamp
from orchestrator.replay.check import check
from projections.confidence.entries import Careful
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import actions as act
from schemas import events as ev
from tests.unit.actionloop import Loop
from tests.unit.builders import at, graph, observed, registered, spec

CC = CarefulConfig(enter_below=0.8, leave_at=0.9, observe_interval_s=0.5)
STAMP = Stamp(view_seqs={"confidence": 7}, decider_id="d", decider_version="v", policy="eft")
ON = Careful(since=at(0), confidence=0.7, threshold=0.8, observe_interval_s=0.5)


@pytest.mark.parametrize(
    ("confidence", "careful", "expected"),
    [
        (1.0, None, None),  # confident: nothing to do
        (0.8, None, None),  # at the threshold is not under it
        (0.79, None, act.CarefulModeEntered),  # under it: enter
        (0.0, None, act.CarefulModeEntered),
        (0.5, ON, None),  # careful already: no second event in one episode
        (0.85, ON, None),  # back over enter_below but under leave_at: the hysteresis holds it
        (0.9, ON, act.CarefulModeLeft),  # at leave_at: leave
        (1.0, ON, act.CarefulModeLeft),
    ],
)
def test_judge_table(confidence, careful, expected):
    e = judge(confidence, careful, at(5), CC, STAMP)
    assert type(e) is expected if expected else e is None


def test_the_events_name_confidence_thresholds_interval_and_inputs():
    e = judge(0.75, None, at(5), CC, STAMP)
    assert isinstance(e, act.CarefulModeEntered)
    assert (e.confidence, e.threshold, e.observe_interval_s) == (0.75, 0.8, 0.5)
    assert "0.75 < 0.80" in e.reason and "every 0.5s" in e.reason and "0.90" in e.reason
    assert e.view_seqs == {"confidence": 7} and e.now == at(5) and e.decider_id == "d"
    left = judge(0.91, ON, at(6), CC, STAMP)
    assert isinstance(left, act.CarefulModeLeft) and left.threshold == 0.9 and "0.91 >= 0.90" in left.reason


def test_off_is_off_and_leaves_an_episode_on():
    off = dataclasses.replace(CC, enabled=False)
    assert judge(0.0, None, at(1), off, STAMP) is None
    left = judge(0.0, ON, at(1), off, STAMP)
    assert isinstance(left, act.CarefulModeLeft) and "off in the decider's config" in left.reason


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ({"careful": {"enter_below": 0.9, "leave_at": 0.8}}, "enter_below (0.9) <= leave_at (0.8)"),
        ({"careful": {"observe_interval_s": 0}}, "observe_interval_s (0) must be > 0"),
        ({"careful": {"interval": 1}}, "[decider].careful: unknown key(s) interval; known: enabled, enter_below"),
    ],
)
def test_config_errors_name_the_key(table, error):
    with pytest.raises(ValueError, match="careful") as info:
        decider_config(table)
    assert error in str(info.value)


def test_config_table():
    c = decider_config({"careful": {"enter_below": 0.6, "leave_at": 0.7, "observe_interval_s": 2.0}})
    assert c.careful == CarefulConfig(enter_below=0.6, leave_at=0.7, observe_interval_s=2.0)
    assert DeciderConfig().careful == CarefulConfig(enter_below=0.8, leave_at=0.9, observe_interval_s=1.0)


def test_this_rounds_action_holds_for_its_dispatches():
    enter = Action(event=judge(0.5, None, at(1), CC, STAMP), expected_seq=0)  # type: ignore[arg-type]
    leave = Action(event=judge(0.95, ON, at(1), CC, STAMP), expected_seq=3)  # type: ignore[arg-type]
    assert careful_now(None, []) is False and careful_now(ON, []) is True
    assert careful_now(None, [enter]) is True and careful_now(ON, [leave]) is False


def views(*events, careful: Careful | None = None, autonomy: str = "full") -> Views:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    types = {t.type: t for t in n.types.values()}
    return Views(tasks=r.tasks, nodes=n.nodes, seqs={"readiness": r.seq}, types=types, autonomy=autonomy,
                 careful=careful, confidence=0.85 if careful else 1.0)  # fmt: skip


def learned(task_type: str, seconds: float, i: int) -> list[ev.AnyEvent]:
    """A finished run of a ``task_type`` task in graph h that took ``seconds`` (its type's mean)."""
    common = dict(graph_id="h", task_id=f"{task_type}{i}", node_id="n1", attempt=1)
    return [
        ev.TaskDispatched(event_id=f"d{task_type}{i}", occurred_at=at(1), command="x", **common),
        ev.TaskStarted(event_id=f"s{task_type}{i}", occurred_at=at(1), **common),
        ev.TaskCompleted(
            event_id=f"c{task_type}{i}",
            occurred_at=at(1 + seconds),
            outcome="success",
            exit_code=0,
            duration_s=seconds,
            **common,
        ),  # fmt: skip
    ]


@pytest.mark.parametrize(
    ("name", "specs", "history", "careful_order", "usual_order"),
    [
        (
            "the task's own estimate",
            (spec("a", estimate_s=60.0), spec("b", estimate_s=5.0), spec("c", estimate_s=20.0)),
            (),
            ["b", "c", "a"],
            ["a", "c", "b"],  # eft: the longest path first
        ),
        (
            "its type's learned mean when it has no estimate",
            (spec("a", type="slow"), spec("b", type="fast"), spec("c", type="mid")),
            (*learned("slow", 90.0, 0), *learned("fast", 2.0, 0), *learned("mid", 30.0, 0)),
            ["b", "c", "a"],
            ["a", "b", "c"],  # without estimates the ranks tie: by key
        ),
    ],
)
def test_careful_dispatch_takes_the_smallest_estimate_first(name, specs, history, careful_order, usual_order):
    hist = (graph("h", *(spec(f"{t}0", type=t) for t in ("slow", "fast", "mid"))), *history) if history else ()
    events = (*hist, graph("g", *specs), registered("n1", slots=1), observed("n1", t=100))

    def order(careful: Careful | None) -> list[str]:
        out, v = [], views(*events, careful=careful)
        while len(out) < len(specs):  # one slot: each round's one dispatch is the first of the order
            _, ds = decide_round(v, at(100), DeciderConfig())
            d = next(d.event for d in ds if d.event.graph_id == "g")
            out.append(d.task_id)
            v = dataclasses.replace(v, tasks={k: t for k, t in v.tasks.items() if k != ("g", d.task_id)},
                                    ready=None)  # fmt: skip
        return out

    assert order(ON) == careful_order, name
    assert order(None) == usual_order, name


def test_a_careful_dispatch_says_so_and_cautious_alone_does_not():
    events = (graph("g", spec("a", estimate_s=9.0), spec("b", estimate_s=1.0)), registered("n1", slots=4))
    _, ds = decide_round(views(*events, careful=ON), at(1), DeciderConfig())
    assert [d.event.task_id for d in ds] == ["b", "a"] and all(NOTE in d.event.strategy for d in ds)
    _, ds = decide_round(views(*events, autonomy="cautious"), at(1), DeciderConfig())
    assert [d.event.task_id for d in ds] == ["b"] and NOTE not in ds[0].event.strategy  # cautious: shortest, 1 a node


def episode(config: DeciderConfig) -> tuple[Loop, list[list[object]]]:
    """Two long tasks fail (two misses: confidence 0.90), then short and long ones succeed."""
    estimates = {"f1": 100.0, "f2": 90.0, "x1": 60.0, "x2": 50.0, "x3": 40.0, "x4": 3.0, "x5": 2.0, "x6": 1.0}
    tasks = (spec(t, estimate_s=s) for t, s in estimates.items())
    loop = Loop(config, graph("g", *tasks), registered("n1", slots=1), observed("n1", t=1), confidence=True)
    rounds: list[list[object]] = []
    t = 2.0
    for _ in range(20):
        loop.append(observed("n1", t=t))
        actions, dispatched = loop.round(at(t))
        rounds.append([*actions, *dispatched])
        loop.finish(at(t + 0.5), lambda d: "failure" if d.task_id.startswith("f") else "success")
        t += 1.0
        if not dispatched and not actions:
            break
    return loop, rounds


def test_an_episode_enters_once_orders_shortest_first_and_leaves_once_replayed():
    config = DeciderConfig(careful=CarefulConfig(enter_below=0.91, leave_at=0.93, observe_interval_s=0.5))
    loop, rounds = episode(config)
    said = [[(type(e).__name__, getattr(e, "task_id", "")) for e in r] for r in rounds]
    assert said[:3] == [
        [("TaskDispatched", "f1")],  # usual order: the longest first; it fails (0.95)
        [("TaskDispatched", "f2")],  # fails: 0.90 < 0.91
        [("CarefulModeEntered", ""), ("TaskDispatched", "x6")],  # entered, and this round is careful
    ]
    # x6, x5, x4 succeed: 0.91, 0.92, 0.93 (>= leave_at): left, and the usual order again
    assert said[3:6] == [
        [("TaskDispatched", "x5")],
        [("TaskDispatched", "x4")],
        [("CarefulModeLeft", ""), ("TaskDispatched", "x1")],
    ]
    assert [x for r in said[6:] for x in r] == [("TaskDispatched", "x2"), ("TaskDispatched", "x3")]
    kinds = [type(e).__name__ for r in rounds for e in r]
    assert kinds.count("CarefulModeEntered") == 1 and kinds.count("CarefulModeLeft") == 1
    careful = [e for r in rounds[2:5] for e in r if isinstance(e, ev.TaskDispatched)]
    assert all(NOTE in e.strategy for e in careful) and NOTE not in rounds[5][1].strategy
    report = check(loop.messages, base=config)
    assert report["mismatches"] == [] and report["reproduced"] == report["decisions"] == 10
    assert check(loop.messages)["mismatches"]  # the thresholds are the decider's config, not in the log


def test_no_episode_without_falling_confidence():
    config = DeciderConfig(careful=CarefulConfig(enter_below=0.91, leave_at=0.93))
    estimates = {"a": 5.0, "b": 1.0}
    loop = Loop(config, graph("g", *(spec(t, estimate_s=s) for t, s in estimates.items())), registered("n1", slots=1),
                observed("n1", t=1), confidence=True)  # fmt: skip
    for t in (2.0, 3.0):
        actions, dispatched = loop.round(at(t))
        loop.finish(at(t + 0.5), lambda d: "success")
        assert actions == [] and NOTE not in dispatched[0].strategy


def test_why_status_and_the_event_lines_show_careful_mode():
    from orchestrator.decision.why import why
    from orchestrator.reports.explain import summary
    from orchestrator.reports.snapshot import careful_line

    events = (graph("g", spec("a", estimate_s=9.0), spec("b", estimate_s=1.0)), registered("n1", slots=1))
    on = msgspec.structs.replace(ON, reason="confidence 0.70 < 0.80: agents observe every 0.5s")
    v = views(*events, careful=on)
    said = why(v.tasks[("g", "a")], v, at(1), DeciderConfig())
    assert said["headline"] == "ready, 2 of 2 by estimate (9s): shorter tasks take the free slots first"
    assert "careful mode since 03:47:00: confidence 0.70 < 0.80" in said["details"][-1]
    assert why(v.tasks[("g", "b")], v, at(1), DeciderConfig())["headline"] == "ready: the next decision sends it to n1"
    usual = views(*events)
    assert why(usual.tasks[("g", "a")], usual, at(1), DeciderConfig())["headline"].startswith("ready: the next")
    assert careful_line(usual, at(1)) is None
    line = careful_line(v, at(30))
    assert line is not None and line.startswith("careful mode for 30s (confidence 0.85; entered at 0.70 < 0.80)")
    assert "every 0.5s" in line
    entered = judge(0.7, None, at(1), CC, STAMP)
    assert entered is not None and summary(entered) == f"careful mode entered: {entered.reason}"


def test_the_consoles_trust_page_shows_careful_mode():
    from orchestrator.console.pages import trust_page
    from projections.confidence.entries import ConfidenceSummary

    summary = ConfidenceSummary(confidence=0.7, level="cautious", derived_level="cautious")
    assert 'id="careful"' not in trust_page(summary, [], [], can_judge=False)
    on = msgspec.structs.replace(ON, reason="confidence 0.70 < 0.80: agents observe every 0.5s")
    page = trust_page(msgspec.structs.replace(summary, careful=on), [], [], can_judge=False)
    assert (
        '<p id="careful">careful mode since 03:47:00: confidence 0.70 &lt; 0.80: agents observe every 0.5s</p>' in page
    )

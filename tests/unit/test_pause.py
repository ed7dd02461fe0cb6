"""Pause on error rate (`orchestrator.decision.pause`): the thresholds, the hysteresis, a person's
pause, the half-open probes, and a whole broken-then-fixed build re-derived by replay."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.decision.config import decider_config
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.pause import PauseConfig, Paused, Stamp, judge
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.why import why
from orchestrator.replay.check import check
from projections.decay import Decayed, add
from projections.readiness.entries import GraphView, Pause
from schemas import actions as act
from schemas import events as ev
from tests.unit.actionloop import Loop
from tests.unit.builders import at, graph, observed, registered, spec

PC = PauseConfig(threshold=0.5, resume_below=0.3, min_completions=3, probe_after_s=10.0)
STAMP = Stamp(view_seqs={"readiness": 1}, decider_id="d", decider_version="v", policy="eft")


def samples(*xs: float) -> Decayed:
    d = Decayed()
    for i, x in enumerate(xs):
        d = add(d, x, at(i), 600.0)
    return d


@pytest.mark.parametrize(
    ("xs", "pause", "expected"),
    [
        ((), None, None),  # no completions: nothing to judge
        ((1, 1), None, None),  # rate 1.0 but 2 completions < min_completions 3
        ((1, 1, 1), None, act.GraphPaused),  # 3 failures: rate 1.0 >= 0.5
        ((0, 1, 0, 1), None, act.GraphPaused),  # about 0.5, the newest failing: just over the threshold
        ((1, 0, 1, 0), None, None),  # about 0.5, the newest succeeding: just under it (recent weighs more)
        ((1, 0, 0, 0), None, None),  # 0.25 < 0.5
        ((1, 0, 0), "decider", None),  # paused, rate 0.33 between 0.3 and 0.5: the hysteresis holds it
        ((1, 0, 0, 0), "decider", act.GraphResumed),  # 0.25 < 0.3: resumes by itself
        ((1, 0, 0, 0, 0, 0), "ana", None),  # a person's pause waits for a person
        ((1, 1, 0), "decider", None),  # 0.67 while paused: no second pause
    ],
)
def test_judge_table(xs, pause, expected):
    p = None if pause is None else Pause(since=at(0), by="" if pause == "decider" else pause)
    e = judge("g", samples(*xs), p, at(len(xs)), PC, STAMP)
    assert type(e) is expected if expected else e is None


def test_a_pause_names_its_rate_thresholds_and_how_to_resume():
    e = judge("g.v1/x", samples(1, 1, 1, 0), None, at(4), PC, STAMP)
    assert isinstance(e, act.GraphPaused) and e.rate == pytest.approx(0.75, abs=1e-3) and e.threshold == 0.5
    assert "0.75" in e.reason and ">= 0.50" in e.reason and "under 0.30" in e.reason
    assert "niyantra resume g.v1/x" in e.reason
    assert e.view_seqs == {"readiness": 1} and e.now == at(4) and e.decider_id == "d"


def test_thresholds_out_of_order_are_refused():
    with pytest.raises(ValueError, match="resume_below"):
        PauseConfig(threshold=0.3, resume_below=0.5)


def test_decider_config_reads_the_pause_table_and_names_unknown_keys():
    cfg = decider_config({"policy": "fifo", "pause": {"threshold": 0.7, "min_completions": 2}})
    assert cfg.pause.threshold == 0.7 and cfg.pause.min_completions == 2 and cfg.policy == "fifo"
    with pytest.raises(ValueError, match=r"\[decider\]\.pause: unknown key\(s\) treshold"):
        decider_config({"pause": {"treshold": 0.7}})
    with pytest.raises(ValueError, match="unknown key"):
        decider_config({"pauses": {}})


def gv(gid: str, pause: Pause | None, running: int = 0) -> GraphView:
    return GraphView(graph_id=gid, total=5, counts={"running": running, "ready": 5 - running}, pause=pause)


@pytest.mark.parametrize(
    ("since_s", "running", "probes", "held"),
    [
        (5, 0, 1, True),  # paused 5 s ago, probes after 10 s
        (10, 0, 1, False),  # half-open: one probe may run
        (20, 1, 1, True),  # its one probe is running
        (20, 1, 2, False),  # two probes allowed
    ],
)
def test_probes_of_a_paused_graph(since_s, running, probes, held):
    pc = dataclasses.replace(PC, probes=probes)
    graphs = {"g": gv("g", Pause(since=at(0)), running), "h": gv("h", None)}
    p = Paused(graphs, None, [], at(since_s), pc)
    assert (p.reason("g") is not None) == held
    assert p.reason("h") is None  # another graph runs on
    if not held:
        assert p.take("g") and (p.reason("g") is not None) == (probes - running == 1)


def test_every_graph_paused_holds_each_graph():
    from projections.readiness.entries import Health

    p = Paused({"h": gv("h", None)}, Health(pause=Pause(since=at(0), reason="x")), [], at(1), PC)
    assert p.reason("h") == "paused: x"


def broken_then_fixed(config: DeciderConfig) -> tuple[Loop, list[list[object]]]:
    """12 independent tasks on a 3-slot node; the first 3 runs fail (a broken build), later ones succeed."""
    loop = Loop(
        config,
        graph("g", *(spec(f"t{i:02d}") for i in range(12))),
        registered("n1", slots=3),
        observed("n1", t=1),
    )
    rounds: list[list[object]] = []
    t = 2.0
    for _ in range(30):
        loop.append(observed("n1", t=t))  # the node stays live
        actions, dispatched = loop.round(at(t))
        rounds.append([*actions, *dispatched])
        loop.finish(at(t + 0.5), lambda d: "failure" if d.occurred_at < at(3) else "success")
        t += 1.0 if not any(isinstance(a, act.GraphPaused) for a in actions) else 10.0
        if all(v.state == "succeeded" or v.state == "failed" for v in loop.views().tasks.values()):
            break
    return loop, rounds


NO_FLAGS = ScoringConfig(flag_after=1000)  # (three failures in a row would also flag the type on the node)


def test_a_burst_of_failures_pauses_the_graph_and_probes_bring_it_back():
    config = DeciderConfig(pause=PC, scoring=NO_FLAGS)
    loop, rounds = broken_then_fixed(config)
    kinds = [[type(e).__name__ for e in r] for r in rounds]
    assert kinds[0] == ["TaskDispatched"] * 3  # all three fail
    assert kinds[1] == ["GraphPaused"]  # rate 1.0 over 3 completions: nothing more is dispatched
    probes = [r for r in rounds[2:] if r and isinstance(r[0], ev.TaskDispatched)]
    resumed = next(i for i, r in enumerate(rounds) if any(isinstance(e, act.GraphResumed) for e in r))
    # one probe a round until the rate is under 0.3: 3/(3+k) says k = 8, but the successes are
    # newer than the failures and weigh a little more (decay), so 7 do
    assert all(len(r) == 1 and "probe of a paused graph" in r[0].strategy for r in rounds[2:resumed])
    assert len([r for r in probes if rounds.index(r) < resumed]) == 7
    assert [type(e).__name__ for e in rounds[resumed]][:2] == ["GraphResumed", "TaskDispatched"]
    alerts = [m for m in loop.messages if m.subject.endswith(".Alert")]
    assert len(alerts) == 1  # one alert per pause
    states = {v.state for v in loop.views().tasks.values()}
    assert states == {"succeeded", "failed"}
    report = check(loop.messages, base=config)
    assert report["mismatches"] == [] and report["reproduced"] == report["decisions"] >= 12
    # the thresholds are the decider's config, not in the log: replay with the defaults differs
    assert check(loop.messages)["mismatches"]


def test_a_persons_pause_holds_until_a_person_resumes():
    config = DeciderConfig(pause=PC)
    loop = Loop(config, graph("g", spec("a"), spec("b")), registered("n1", slots=2), observed("n1", t=1))
    loop.append(act.GraphPaused(event_id="p", occurred_at=at(1), graph_id="g", by="ana", reason="release freeze"))
    loop.append(observed("n1", t=99))
    assert loop.round(at(100)) == ([], [])  # no probes either: a person's pause is not the rate's
    views = loop.views()
    said = why(views.tasks[("g", "a")], views, at(100), config)
    assert said["headline"] == "paused: release freeze" and "niyantra resume g" in said["details"][0]
    loop.append(act.GraphResumed(event_id="r", occurred_at=at(101), graph_id="g", by="ana"))
    loop.append(observed("n1", t=101))
    assert len(loop.round(at(102))[1]) == 2
    assert check(loop.messages)["mismatches"] == []  # a person's events are facts, not decisions


def test_nothing_fires_without_failures_and_off_is_off():
    ok = DeciderConfig(pause=PC)
    loop = Loop(ok, graph("g", *(spec(f"t{i}") for i in range(4))), registered("n1", slots=4), observed("n1", t=1))
    assert [type(e).__name__ for e in loop.round(at(2))[0]] == []
    off = DeciderConfig(pause=dataclasses.replace(PC, enabled=False), scoring=NO_FLAGS)
    loop, rounds = broken_then_fixed(off)
    assert not any(isinstance(e, act.GraphPaused) for r in rounds for e in r)

"""Adaptive timeouts (`orchestrator.decision.timeouts`): the formula's clamps, tightening with
evidence, loosening after a timeout a retry proved too short, and the dispatch that carries it."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.timeouts import TimeoutConfig, learned_timeout
from orchestrator.replay.check import check
from projections.decay import Decayed, add
from projections.node_scores.entries import TypeEstimate
from projections.readiness.entries import TaskView
from schemas import events as ev
from tests.unit.actionloop import Loop
from tests.unit.builders import at, graph, observed, registered, spec

TC = TimeoutConfig(k=4.0, min_ratio=2.0, min_samples=10, floor_s=1.0, ceiling_s=100.0, loosen=1.5)


def durations(*xs: float) -> Decayed:
    d = Decayed()
    for i, x in enumerate(xs):
        d = add(d, x, at(i), 1800.0)
    return d


def task(**kw: object) -> TaskView:
    return TaskView(graph_id="g", task_id="t", command="x", state="ready", type=kw.pop("type", "cc"), **kw)  # type: ignore[arg-type]


def types(xs: tuple[float, ...], proven_s: float = 0.0) -> dict[str, TypeEstimate]:
    return {"cc": TypeEstimate(type="cc", duration=durations(*xs), proven_s=proven_s)}


@pytest.mark.parametrize(
    ("xs", "kw", "proven", "expected"),
    [
        ((2.0,) * 9, {}, 0.0, None),  # 9 runs < min_samples 10
        ((2.0,) * 10, {}, 0.0, round(2.0 * 2.0 * (1 + 1 / 10**0.5), 3)),  # no spread: min_ratio × mean × (1 + 1/√n)
        ((2.0,) * 40, {}, 0.0, round(2.0 * 2.0 * (1 + 1 / 40**0.5), 3)),  # more evidence: tighter
        ((0.01,) * 10, {}, 0.0, 1.0),  # clamped to the floor
        ((60.0,) * 10, {}, 0.0, 100.0),  # clamped to the ceiling
        ((2.0,) * 10, {}, 20.0, 30.0),  # a timeout proved too short at 20 s: at least 1.5 × 20
        ((2.0,) * 10, {"timeout_s": 7.0}, 0.0, None),  # the graph fixes its own timeout
        ((2.0,) * 10, {"type": ""}, 0.0, None),  # untyped tasks share no duration
        ((2.0,) * 10, {"failure_kind": "timeout", "duration_s": 9.0}, 0.0, 18.0),  # retry: 2 × 9 s it ran
    ],
)
def test_learned_timeout_table(xs, kw, proven, expected):
    got = learned_timeout(task(**kw), types(xs, proven), TC, 2.0)
    assert (got[0] if got else None) == expected


def test_the_spread_counts_and_the_rule_says_how():
    xs = (1.0, 3.0) * 5  # mean 2, spread 1: 2 + 4 × 1 = 6 > 2 × 2
    value, rule = learned_timeout(task(), types(xs), TC, 2.0)
    assert value == pytest.approx(6.0 * (1 + 1 / 10**0.5), abs=0.05)
    assert rule.startswith("type cc: mean 2.00s + 4x spread 1.00s over 10 runs")
    assert (
        "clamped" not in rule and learned_timeout(task(), types(xs), dataclasses.replace(TC, enabled=False), 2) is None
    )


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="floor_s"):
        TimeoutConfig(floor_s=10.0, ceiling_s=5.0)


CONFIG = DeciderConfig(timeouts=TC)


def loop_of(n: int) -> Loop:
    return Loop(
        CONFIG,
        graph("g", *(spec(f"t{i:02d}", type="cc") for i in range(n))),
        registered("n1", slots=1),
        observed("n1", t=1),
    )


def test_ten_fast_runs_give_the_eleventh_a_learned_timeout_and_replay_derives_it():
    loop = loop_of(12)
    timeouts = []
    for i in range(12):
        loop.append(observed("n1", t=2 + i))
        _, [d] = loop.round(at(2 + i))
        timeouts.append(d.timeout_s)
        loop.finish(at(2.5 + i), lambda d: "success", duration_s=0.2)
    assert timeouts[:10] == [None] * 10 and timeouts[10] == 1.0 == timeouts[11]  # 0.2 s runs: the floor
    report = check(loop.messages, base=CONFIG)
    assert report["mismatches"] == [] and report["reproduced"] == 12


def test_a_timeout_a_retry_proves_too_short_loosens_the_type():
    config = DeciderConfig(timeouts=dataclasses.replace(TC, k=1.0))  # (so the one long run's spread stays small)
    loop = Loop(
        config,
        graph(
            "g",
            *(spec(f"t{i:02d}", type="cc") for i in range(10)),
            spec("slow", *(f"t{i:02d}" for i in range(10)), type="cc", max_attempts=2),
            spec("after", "slow", type="cc"),
        ),
        registered("n1", slots=1),
        observed("n1", t=1),
    )
    t = 2.0
    for _ in range(10):  # ten 0.2 s runs: the learned timeout is the 1 s floor
        loop.append(observed("n1", t=t))
        loop.round(at(t))
        loop.finish(at(t + 0.5), lambda d: "success", duration_s=0.2)
        t += 1
    loop.append(observed("n1", t=t))
    _, [d] = loop.round(at(t))
    assert d.task_id == "slow" and d.timeout_s == 1.0
    loop.running = []  # it times out after 1 s
    common = dict(graph_id=d.graph_id, task_id=d.task_id, node_id="n1", attempt=1)
    loop.append(ev.TaskStarted(event_id="st", occurred_at=at(t), **common))
    loop.append(ev.TaskCompleted(event_id="c", occurred_at=at(t + 1), outcome="failure", duration_s=1.0,
                                 error="timed out after 1.0s", **common))  # fmt: skip
    t += 10  # (past the retry's backoff)
    loop.append(observed("n1", t=t))
    _, [retry] = loop.round(at(t))
    assert retry.task_id == "slow" and retry.timeout_s == 2.0  # 2 × the 1 s it ran
    loop.finish(at(t + 2), lambda d: "success", duration_s=1.8)  # it needed 1.8 s: the timeout was too short
    est = loop.views().types["cc"]
    assert (est.proven_s, est.short_timeouts) == (1.8, 1)
    loop.append(observed("n1", t=t + 3))
    _, [after] = loop.round(at(t + 3))
    assert (
        after.task_id == "after" and after.timeout_s == 2.7 and "proved too short at 1.8s" in after.timeout_rule
    )  # 1.5 × 1.8
    assert check(loop.messages, base=config)["mismatches"] == []

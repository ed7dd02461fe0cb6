"""Feedback rules, each a pure function: error signatures, failure streaks and flags, the quality
threshold; and the three views agreeing on a judged outcome."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.confidence.fold import ConfidenceView, evolve_confidence, summary_value
from projections.feedback import (
    QUALITY_RULE,
    QualityGate,
    QualityRule,
    Streak,
    error_signature,
    is_flagged,
    judge,
    next_threshold,
    streak_after,
)
from projections.fold import Fold
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.node_scores.patterns import pattern_key
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import PROJECTIONS, project
from schemas import codec
from schemas import events as ev
from tests.unit.builders import T0, at, completed, dispatched, graph, registered, spec
from tests.unit.test_views_property import messages, one_fold, with_restarts


@pytest.mark.parametrize(
    ("name", "exit_code", "error", "tail", "expected"),
    [
        ("exit code only: the last output line says what", 1, "exit code 1", "ok\nError: disk 93% full\n\n",
         "exit 1: error: disk #% full"),
        ("the error field wins when it says more", None, "timed out after 30.0s", "",
         "exit none: timed out after #.#s"),
        ("hex ids and numbers are taken out", 2, "exit code 2", "lock held by pid 4242 (a3f9c2e1d0b7)",
         "exit 2: lock held by pid # (<hex>)"),
        ("whitespace collapses, case folds", 1, "", "  Segmentation   FAULT ", "exit 1: segmentation fault"),
        ("no output at all", 3, "exit code 3", "", "exit 3: exit code #"),
    ],
)  # fmt: skip
def test_error_signature(name, exit_code, error, tail, expected):
    assert error_signature(exit_code, error, tail) == expected


def test_same_failure_elsewhere_has_the_same_signature():
    a = error_signature(1, "exit code 1", "cc: error at 12:03:44 in /tmp/build-8812/x.c line 40")
    b = error_signature(1, "exit code 1", "cc: error at 09:15:02 in /tmp/build-1907/x.c line 40")
    assert a == b and error_signature(2, "exit code 2", "cc: error") != error_signature(1, "exit code 1", "cc: error")


def streak(*outcomes: str) -> Streak:
    s = Streak()
    for i, o in enumerate(outcomes):
        s = streak_after(s, o == "F", at(i), "boom" if o == "F" else "")
    return s


@pytest.mark.parametrize(
    ("outcomes", "failures", "flagged"),
    [
        ("", 0, False),
        ("FF", 2, False),
        ("FFF", 3, True),  # the bound: three in a row
        ("FFFF", 4, True),
        ("FFSF", 1, False),  # a success clears the streak
        ("FFFS", 0, False),  # ... also a flagged one
        ("FSFSFSF", 1, False),  # flaky, never three in a row: never flagged
        ("FFFSFFF", 3, True),  # flagged again after clearing
    ],
)
def test_flagging_threshold_and_clearing(outcomes, failures, flagged):
    s = streak(*outcomes)
    assert s.failures == failures
    assert is_flagged(s, at(len(outcomes)), flag_after=3, cooldown_s=600) is flagged


@pytest.mark.parametrize(
    ("flag_after", "now_s", "flagged"),
    [
        (3, 10, True),
        (4, 10, False),  # the bound is configurable
        (2, 10, True),
        (3, 2 + 599, True),  # the last failure (at 2s) is within the cool-down
        (3, 2 + 600, False),  # the flag lifts: the pattern may be tried again
    ],
)
def test_flag_bound_and_cool_down(flag_after, now_s, flagged):
    assert is_flagged(streak("F", "F", "F"), at(now_s), flag_after=flag_after, cooldown_s=600) is flagged


def test_after_the_cool_down_one_more_failure_flags_again_at_once():
    s = streak_after(streak("F", "F", "F"), True, at(1000))
    assert s.failures == 4 and is_flagged(s, at(1001), 3, 600)


# --- the quality threshold ------------------------------------------------------------------

RULE = QualityRule(initial=0.7, floor=0.5, ceiling=0.95, high=0.85, step=0.02, window=3)


@pytest.mark.parametrize(
    ("threshold", "average", "expected"),
    [
        (0.70, 0.90, 0.72),  # high average: tighten by a step
        (0.70, 0.85, 0.72),  # ... at the bound too
        (0.94, 0.99, 0.95),  # at most the ceiling
        (0.95, 0.99, 0.95),
        (0.70, 0.80, 0.70),  # between the threshold and high: hold
        (0.80, 0.79, 0.78),  # below the threshold: loosen by a step
        (0.51, 0.10, 0.50),  # at least the floor
        (0.50, 0.10, 0.50),
    ],
)
def test_threshold_tightens_loosens_and_is_bounded(threshold, average, expected):
    assert next_threshold(threshold, average, RULE) == pytest.approx(expected)


def scored(q: float | None, outcome: str = "success", phase: str = "run") -> ev.TaskCompleted:
    c = completed("g", "a", "n1", outcome)
    return msgspec.structs.replace(c, quality=q, phase=phase)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("threshold", "event", "outcome", "judged"),
    [
        (0.70, scored(0.69), "partial", 1),  # below the threshold: partial, not success
        (0.70, scored(0.70), "success", 1),  # at it: success
        (0.70, scored(None), "success", 0),  # no score: not judged
        (0.70, scored(0.10, "failure"), "failure", 0),  # a failure stays a failure, not judged
        (0.70, scored(0.10, phase="preflight"), "success", 0),  # a preflight is not judged
        (0.70, scored(0.60, "partial"), "partial", 1),
    ],
)
def test_partial_below_the_threshold(threshold, event, outcome, judged):
    gate, got = judge(QualityGate(threshold=threshold), event, RULE)
    assert (got, gate.judged) == (outcome, judged)


def test_the_threshold_follows_the_recent_average_and_each_completion_meets_it_as_it_stood():
    gate = QualityGate(threshold=RULE.initial)
    seen = []
    for q in [0.9, 0.9, 0.9, 0.9, 0.74, 0.3, 0.3, 0.3, 0.95, 0.95, 0.95]:
        gate, outcome = judge(gate, scored(q), RULE)
        seen.append((outcome, gate.threshold))
    assert seen == [
        ("success", 0.72),  # window average 0.9 >= 0.85: tighten
        ("success", 0.74),
        ("success", 0.76),
        ("success", 0.78),
        ("partial", 0.78),  # 0.74 < 0.78; average 0.847 is neither high nor below 0.78: hold
        ("partial", 0.76),  # average 0.647 < 0.78: loosen
        ("partial", 0.74),
        ("partial", 0.72),
        ("success", 0.70),  # 0.95 passes; the average 0.517 is still below: loosen
        ("success", 0.70),  # average 0.733: hold
        ("success", 0.72),  # average 0.95: tighten again
    ]
    assert (gate.judged, gate.downgraded) == (11, 4)


def test_default_rule_is_the_articles():
    assert (QUALITY_RULE.high, QUALITY_RULE.step, QUALITY_RULE.ceiling) == (0.85, 0.02, 0.95)


# --- the views agree --------------------------------------------------------------------------


def run_history(*qualities: float) -> list[ev.AnyEvent]:
    tasks = [spec(f"t{i}", type="build") for i in range(len(qualities))]
    events: list[ev.AnyEvent] = [graph("g", *tasks, spec("after", "t0")), registered("n1", slots=9)]
    for i, q in enumerate(qualities):
        events.append(msgspec.structs.replace(dispatched("g", f"t{i}", "n1"), event_id=f"d{i}"))
        c = completed("g", f"t{i}", "n1", t=3 + i)
        events.append(msgspec.structs.replace(c, event_id=f"c{i}", quality=q))
    return events


def test_readiness_node_scores_and_confidence_agree_on_a_judged_partial():
    pairs = list(enumerate(run_history(0.95, 0.4), 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    c = project(evolve_confidence, ConfidenceView(), pairs)
    good, weak = r.tasks[("g", "t0")], r.tasks[("g", "t1")]
    assert (good.state, good.reason) == ("succeeded", "")
    assert (weak.state, weak.reason) == ("succeeded", "partial: quality 0.40 below the threshold 0.72")
    assert r.tasks[("g", "after")].state == "ready"  # a partial counts as done for dependents
    assert n.nodes["n1"].scores["build"].success.s1 == pytest.approx(2 ** (-1 / 1800) + 0.5)  # partial: 0.5
    assert r.quality == n.quality == c.quality
    s = summary_value(c)
    assert (s.quality_threshold, s.quality_average) == (0.7, pytest.approx(0.675))


def test_recorded_event_keeps_the_agents_report():
    events = run_history(0.4)
    assert events[-1].outcome == "success"  # type: ignore[attr-defined]
    project(evolve_readiness, ReadinessView(), list(enumerate(events, 1)))
    assert events[-1].outcome == "success"  # type: ignore[attr-defined]


# --- patterns in the node-scores view -------------------------------------------------------


def failing(task: str, node: str, t: float, tail: str = "fatal: repository corrupt 0x1f", outcome="failure"):
    d = msgspec.structs.replace(dispatched("g", task, node, t=t), event_id=f"d:{task}", command="git fsck")
    c = msgspec.structs.replace(
        completed("g", task, node, outcome, t=t + 1),
        event_id=f"c:{task}",
        error="exit code 1" if outcome == "failure" else "",
        output_tail=tail,
    )
    return [d, c]


def fold_nodes(*events):
    return project(evolve_node_scores, NodeScoresView(), list(enumerate(events, 1)))


def test_type_by_node_streak_counts_failures_in_a_row_and_a_success_clears_it():
    g = graph("g", *(spec(f"t{i}", type="compile") for i in range(5)))
    evs = [g, registered("n1")]
    for i, o in enumerate(["failure", "failure", "failure"]):
        evs += failing(f"t{i}", "n1", 10 * i, outcome=o)
    n = fold_nodes(*evs)
    s = n.nodes["n1"].scores["compile"].streak
    assert (s.failures, s.last_failure_at) == (3, at(21))
    n = fold_nodes(*evs, *failing("t3", "n1", 40, outcome="success"))
    s = n.nodes["n1"].scores["compile"].streak
    assert (s.failures, s.total_failures, s.cleared_at) == (0, 3, at(41))


def test_cancellations_do_not_count():
    g = graph("g", spec("t0", type="compile"))
    d, c = failing("t0", "n1", 0)
    n = fold_nodes(g, registered("n1"), d, msgspec.structs.replace(c, error="cancelled: by ana", retryable=False))
    assert n.nodes["n1"].scores["compile"].streak.failures == 0 and not n.patterns


def test_command_by_signature_pattern_across_nodes_and_its_clearing():
    g = graph("g", *(spec(f"t{i}") for i in range(5)))
    evs = [g, registered("n1"), registered("n2")]
    evs += failing("t0", "n1", 0) + failing("t1", "n2", 10)
    evs += failing("t2", "n1", 20, tail="fatal: repository corrupt 0x2f")
    n = fold_nodes(*evs)
    [(k, p)] = n.patterns.items()  # 0x1f and 0x2f are one signature: numbers are taken out
    assert p.signature == "exit 1: fatal: repository corrupt #x#f"
    assert (p.command, p.streak.failures, p.nodes, p.last_task) == ("git fsck", 3, ("n1", "n2"), "g/t2")
    assert k == pattern_key("git fsck", p.signature) and k.startswith("pattern.")
    other = fold_nodes(*evs, *failing("t3", "n2", 30, tail="fatal: out of memory"))
    assert sorted(p.streak.failures for p in other.patterns.values()) == [1, 3]
    cleared = fold_nodes(*evs, *failing("t3", "n2", 30, outcome="success"))
    assert [p.streak.failures for p in cleared.patterns.values()] == [0]


def test_pattern_keys_are_written_and_rebuilt():
    from projections.node_scores.fold import node_keys, node_values

    g = graph("g", spec("t0"))
    n = fold_nodes(g, registered("n1"), *failing("t0", "n1", 0))
    [key] = n.patterns
    assert key in node_keys(n) and node_values(n, {key})[key] == n.patterns[key]
    assert T0 + timedelta(seconds=1) == n.patterns[key].streak.last_failure_at


# --- property: restarts and agreement -----------------------------------------------------------


def with_feedback(rng: random.Random, msg: tuple[bytes, str]) -> tuple[bytes, str]:
    """A completion with a quality score and a failure's output, so streaks, patterns and the
    threshold all move."""
    data, subject = msg
    if ".TaskCompleted." not in subject:
        return msg
    e = codec.decode(data, subject=subject, seq=0)
    assert isinstance(e, ev.TaskCompleted)
    e = msgspec.structs.replace(
        e,
        quality=rng.choice([None, 0.2, 0.6, 0.8, 0.9, 0.99]),
        error=rng.choice(["", "exit code 1", "timed out after 5.0s", "cancelled: by ana"]),
        output_tail=rng.choice(["", "error: disk 91% full", "boom 0x7f"]),
    )
    return codec.encode(e), subject


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 80))
def test_feedback_survives_restarts_and_the_three_views_agree(seed, n):
    rng = random.Random(seed)
    msgs = [with_feedback(rng, m) for m in messages(rng, n)]
    gates = []
    for name in ("readiness", "node-scores", "confidence"):
        assert with_restarts(name, msgs, rng) == one_fold(name, msgs), name
        fold = Fold(PROJECTIONS[name])
        for seq, (data, subject) in enumerate(msgs, 1):
            fold.apply(data, subject, seq)
        gates.append(fold.view.quality)
    assert gates[0] == gates[1] == gates[2]
    assert QUALITY_RULE.floor <= gates[0].threshold <= QUALITY_RULE.ceiling

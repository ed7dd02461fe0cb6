"""The decision core: who gets which task, why, and always the same answer for the same input.

Table-driven over event sequences folded through the real projections; no server.
"""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from orchestrator.decision.decide import DeciderConfig, Views, decide, gate
from orchestrator.decision.scoring import ScoringConfig, priority
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import events as ev
from tests.unit.builders import at, completed, dispatched, graph, observed, registered, spec, started, submitted

CONFIG = DeciderConfig(node_ttl_s=20)


def views(*events, autonomy: str = "full") -> Views:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    seqs = {"readiness": r.seq, "node-scores": n.seq}
    return Views(tasks=r.tasks, nodes=n.nodes, seqs=seqs, types=n.types, autonomy=autonomy)


def plan(decisions):
    return [(d.event.task_id, d.event.node_id, d.event.attempt, d.event.phase) for d in decisions]


def took(task: str, node: str, seconds: float, expected: float = 10.0, t: float = 0) -> list[ev.AnyEvent]:
    """A finished run of ``task`` on ``node`` that took ``seconds`` (for learning speeds)."""
    d = msgspec.structs.replace(dispatched("h", task, node, t=t), expected_duration_s=expected)
    c = msgspec.structs.replace(
        completed("h", task, node, t=t + seconds), duration_s=seconds, expected_duration_s=expected
    )
    return [d, started("h", task, node, t=t), c]


HISTORY = graph("h", *(spec(f"p{i}", type="build", estimate_s=10.0) for i in range(4)))


@pytest.mark.parametrize(
    ("name", "events", "now_s", "expected"),
    [
        ("nothing registered", (submitted("g", ("a", ())),), 1, []),
        (
            "one slot, two ready: one goes",
            (submitted("g", ("a", ()), ("b", ())), registered("n1", slots=1)),
            1,
            [("a", "n1", 1, "run")],
        ),
        (
            "a node unseen for longer than the ttl is not alive",
            (submitted("g", ("a", ())), registered("n1", t=0)),
            30,
            [],
        ),
        (
            "busy slots count",
            (submitted("g", ("a", ()), ("b", ())), registered("n1", slots=1), dispatched("g", "a", "n1")),
            2,
            [],
        ),
        (
            "a failed attempt is retried as the next attempt",
            (
                submitted("g", ("a", ()), max_attempts=2),
                registered("n1", slots=1),
                dispatched("g", "a", "n1"),
                completed("g", "a", "n1", "failure"),
            ),
            9,
            [("a", "n1", 2, "run")],
        ),
        (
            "the longer chain goes first (critical-path rank)",
            (
                graph("g", spec("x", estimate_s=5.0), spec("y", estimate_s=5.0), spec("z", "y", estimate_s=50.0)),
                registered("n1", slots=1),
            ),
            1,
            [("y", "n1", 1, "run")],
        ),
        (
            "a tier-2 task gets its preflight first",
            (graph("g", spec("d", tier=2, preflight="make -n")), registered("n1", slots=1)),
            1,
            [("d", "n1", 0, "preflight")],
        ),
        ("a tier-3 task waits for approval", (graph("g", spec("r", tier=3)), registered("n1")), 1, []),
        (
            "an approved tier-3 task runs",
            (
                graph("g", spec("r", tier=3)),
                registered("n1"),
                ev.TaskApproved(event_id="ap", occurred_at=at(0.5), graph_id="g", task_id="r", by="ana"),
            ),
            1,
            [("r", "n1", 1, "run")],
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_who_gets_what(name, events, now_s, expected):
    assert plan(decide(views(*events), at(now_s), CONFIG)) == expected


def test_every_candidate_is_recorded_with_its_reason():
    v = views(
        graph("g", spec("a", labels={"os": "linux"})),
        registered("n1", slots=2, os="linux"),
        registered("n2", slots=1, t=-60, os="linux"),
        registered("n3", slots=1, os="macos"),
    )
    [d] = decide(v, at(1), CONFIG)
    reasons = {c.node_id: (c.eligible, c.reason) for c in d.event.candidates}
    assert reasons["n2"] == (False, "not alive: last seen 61s ago")
    assert reasons["n3"] == (False, "missing label os=linux")
    assert reasons["n1"][0] and reasons["n1"][1].startswith("finish in 60.0s: 60.0s at speed 1.00x")
    assert d.event.node_id == "n1" and d.event.view_seqs == {"node-scores": 4, "readiness": 4}
    assert d.event.policy == "eft" and d.event.expected_duration_s == 60.0


def test_the_node_learned_to_be_faster_gets_the_work():
    history = [HISTORY, registered("slow", slots=1), registered("fast", slots=1)]
    history += took("p0", "slow", 20.0) + took("p1", "fast", 5.0)  # slow: 0.5x, fast: 2x
    v = views(*history, graph("g", spec("a", type="build", estimate_s=10.0)))
    d = next(d for d in decide(v, at(21), CONFIG) if d.event.task_id == "a")
    assert d.event.node_id == "fast" and d.event.expected_duration_s < 10.0
    reasons = {c.node_id: c.reason for c in d.event.candidates}
    assert "1 runs of this type" in reasons["fast"] and "speed" in reasons["slow"]


def test_waits_for_a_busy_node_that_still_finishes_first():
    history = [HISTORY, registered("slow", slots=1), registered("fast", slots=1)]
    history += took("p0", "slow", 100.0) + took("p1", "fast", 2.5)  # slow 0.1x, fast 4x
    busy = [dispatched("h", "p2", "fast", t=110), started("h", "p2", "fast", t=110)]
    busy += [observed("fast", t=110, running=1), observed("slow", t=110)]
    v = views(*history, *busy, graph("g", spec("a", type="build", estimate_s=10.0)))
    assert decide(v, at(111), CONFIG) == []  # fast frees in ~1.5 s and runs it in ~3 s; slow needs ~60 s
    no_hold = dataclasses.replace(CONFIG, scoring=ScoringConfig(hold_for_faster=False))
    assert plan(decide(v, at(111), no_hold)) == [("a", "slow", 1, "run")]


@pytest.mark.parametrize(
    ("autonomy", "tier", "why"),
    [
        ("full", 1, None),
        ("full", 2, None),
        ("cautious", 1, None),
        ("cautious", 2, "autonomy cautious and the task is tier 2"),
        ("supervised", 1, "autonomy supervised: nothing runs without an approval"),
        ("full", 3, "awaiting approval"),
    ],
)
def test_autonomy_and_tiers_gate_what_may_run(autonomy, tier, why):
    v = views(graph("g", spec("a", tier=tier, preflight="check" if tier == 2 else None)), registered("n1"))
    assert gate(next(iter(v.tasks.values())), autonomy) == why


def test_cautious_runs_one_task_per_node_shortest_first():
    events = (
        graph("g", spec("long", estimate_s=100.0), spec("short", estimate_s=1.0), spec("mid", estimate_s=10.0)),
        registered("n1", slots=4),
    )
    assert plan(decide(views(*events, autonomy="cautious"), at(1), CONFIG)) == [("short", "n1", 1, "run")]
    assert len(decide(views(*events), at(1), CONFIG)) == 3


def test_aging_makes_priority_grow_without_bound():
    cfg = ScoringConfig()
    v = views(graph("g", spec("old", estimate_s=1.0), spec("new", estimate_s=1.0)), registered("n1", slots=1))
    task = v.tasks[("g", "old")]
    values = [priority(task, at(s), cfg) for s in (1, 10, 1_000, 1_000_000)]
    assert values == sorted(values) and values[-1] - values[0] > 40_000


def test_no_starvation_a_waiting_task_overtakes_a_stream_of_more_urgent_ones():
    """A low-rank task that has waited long enough goes before a fresh high-rank one."""
    low = spec("low", estimate_s=1.0)
    events = [graph("g", low), registered("n1", slots=1), observed("n1", t=5000)]
    fresh = ev.GraphSubmitted(
        event_id="s2", occurred_at=at(5000), graph_id="g2", tasks=(spec("urgent", estimate_s=200.0),)
    )
    v = views(*events, fresh)
    assert plan(decide(v, at(5001), CONFIG))[0][0] == "low"  # 5000 s × 0.05 = 250 s of aging > 200 s rank
    assert plan(decide(v, at(5001), dataclasses.replace(CONFIG, scoring=ScoringConfig(aging_per_s=0.0))))[0][0] == (
        "urgent"
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("seed", [("a", "n2", 1, "run"), ("b", "n1", 1, "run")]),
        ("fifo", [("a", "n1", 1, "run"), ("b", "n1", 1, "run")]),
    ],
)
def test_named_policies_for_comparison(policy, expected):
    v = views(submitted("g", ("a", ()), ("b", ())), registered("n1", slots=2), registered("n2", slots=3))
    cfg = dataclasses.replace(CONFIG, scoring=ScoringConfig(policy=policy))
    decisions = decide(v, at(1), cfg)
    assert plan(decisions) == expected and {d.event.policy for d in decisions} == {policy}


def test_the_guard_is_the_tasks_last_sequence_and_next_version():
    v = views(
        submitted("g", ("a", ()), max_attempts=3),
        registered("n1"),
        dispatched("g", "a", "n1"),
        completed("g", "a", "n1", "failure"),
    )
    [d] = decide(v, at(9), CONFIG)
    assert (d.expected_seq, d.version) == (4, 3) and d.event.strategy.startswith(
        "retry 2 of 3 after failure; backoff 5s"
    )


def test_same_input_same_bytes():
    events = [
        submitted("g", *((f"t{i}", ()) for i in range(30))),
        registered("n2", slots=3),
        registered("n1", slots=5),
    ]
    first = msgspec.json.encode(decide(views(*events), at(1), CONFIG))
    shuffled = views(*events)
    reordered = dataclasses.replace(
        shuffled,
        tasks=dict(reversed(list(shuffled.tasks.items()))),
        nodes=dict(reversed(list(shuffled.nodes.items()))),
    )
    assert msgspec.json.encode(decide(reordered, at(1), CONFIG)) == first
    assert msgspec.json.encode(decide(views(*events), at(1), CONFIG)) == first
    assert len(decide(views(*events), at(1), CONFIG)) == 8


def test_decide_does_not_mutate_its_inputs():
    v = views(submitted("g", ("a", ())), registered("n1"))
    before = (dict(v.tasks), dict(v.nodes))
    decide(v, at(1), CONFIG)
    assert (dict(v.tasks), dict(v.nodes)) == before


# --- retry strategies ----------------------------------------------------------------------


def _failed(kind: str, attempts: int = 3, **task_kw) -> list:
    """A task that failed (or was lost, or timed out) once on n1; n1 and n2 are live."""
    events = [
        graph("g", spec("a", max_attempts=attempts, **task_kw)),
        registered("n1"),
        registered("n2"),
        dispatched("g", "a", "n1"),
        started("g", "a", "n1"),
    ]
    if kind == "lost":
        events.append(
            ev.TaskLost(
                event_id="l",
                occurred_at=at(3),
                graph_id="g",
                task_id="a",
                node_id="n1",
                attempt=1,
                reason="lease expired",
            )
        )
    else:
        c = completed("g", "a", "n1", "failure")
        if kind == "timeout":
            c = msgspec.structs.replace(c, error="timed out after 10.0s", exit_code=None)
        events.append(c)
    return events


@pytest.mark.parametrize(
    ("now", "attempt", "expected"),
    [(4, 1, []), (7.9, 1, []), (8.0, 1, [("a", 2)])],
)
def test_a_retry_waits_for_its_exponential_backoff(now, attempt, expected):
    v = views(*_failed("failure"))
    assert [(d.event.task_id, d.event.attempt) for d in decide(v, at(now), CONFIG)] == expected


def test_backoff_doubles_per_attempt_and_is_capped():
    from orchestrator.decision.scoring import backoff_until

    t = views(*_failed("failure")).tasks[("g", "a")]
    cfg = ScoringConfig(backoff_base_s=5.0, backoff_max_s=12.0)
    waits = [
        (backoff_until(msgspec.structs.replace(t, attempt=n), cfg) - t.ready_since).total_seconds()
        for n in (1, 2, 3, 4)
    ]
    assert waits == [5.0, 10.0, 12.0, 12.0]


def test_a_lost_attempt_is_retried_on_another_node():
    [d] = decide(views(*_failed("lost")), at(20), CONFIG)
    assert d.event.node_id == "n2" and "another node" in d.event.strategy
    reasons = {c.node_id: c.reason for c in d.event.candidates}
    assert reasons["n1"] == "avoided: attempt 1 was lost here"


def test_a_failure_moves_the_retry_to_a_node_without_failures():
    [d] = decide(views(*_failed("failure")), at(20), CONFIG)
    assert d.event.node_id == "n2" and d.event.strategy.startswith("retry 2 of 3 after failure")


def test_after_a_timeout_the_retry_gets_a_longer_timeout():
    [d] = decide(views(*_failed("timeout", timeout_s=10.0)), at(20), CONFIG)
    assert d.event.timeout_s == 20.0 and "timeout 10s -> 20s" in d.event.strategy


def test_the_only_node_is_used_even_if_the_attempt_failed_there():
    events = [e for e in _failed("lost") if not (isinstance(e, ev.NodeRegistered) and e.node_id == "n2")]
    [d] = decide(views(*events), at(20), CONFIG)
    assert d.event.node_id == "n1" and "same node" in d.event.strategy

"""A `RoundMemo` kept across rounds changes nothing a round decides: over a run whose nodes learn
different speeds and success rates for two task types (so their facts change between rounds) and
one node gets flagged for failing again and again,
every round's dispatches and reservations with the memo equal those without one, byte for byte,
under every policy."""

from __future__ import annotations

import dataclasses

from orchestrator.decision.decide import DeciderConfig, plan
from orchestrator.decision.flags import flag_index
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.slots import MEMO_LIMIT, NodeFacts, RoundMemo
from orchestrator.replay.replayer import Replayer
from schemas import codec
from schemas import events as ev
from tests.unit.builders import at, completed, dispatched, graph, observed, registered, spec, started
from tests.unit.test_replay import Log

SPEED = {"n1": 2.0, "n2": 1.0, "n3": 4.0}


def decided(views, now, config):
    out, reserved = plan(views, now, config)
    return [codec.encode(d.event) for d in out], sorted(reserved.items())


def run(policy: str) -> tuple[int, bool]:
    """Rounds checked (each decided with the replayer's kept memo and without any), and whether
    a node was flagged in one of them."""
    log = Log()
    specs = [
        spec(f"t{i}", *((f"t{i - 4}",) if i >= 4 else ()), estimate_s=1.0 + i % 3, type="ab"[i % 2], max_attempts=2)
        for i in range(24)
    ]
    for e in (graph("g", *specs), *(registered(n, slots=1 + (n == "n1")) for n in SPEED)):
        log.append(e)
    for n in SPEED:
        log.append(observed(n, t=0))
    replayer = Replayer(log.messages)
    config = DeciderConfig(scoring=ScoringConfig(policy=policy), node_ttl_s=1e9)
    running: list[tuple[float, ev.TaskDispatched]] = []
    rounds, now, flagged = 0, 0.0, False
    for _ in range(200):
        seq = log.messages[-1].seq
        views = replayer.views({"readiness": seq, "node-scores": seq}, config.scoring)
        assert isinstance(views.memo, RoundMemo)
        kept = decided(views, at(now), config)
        flagged = flagged or bool(flag_index(views.nodes, views.patterns, at(now), config.scoring))
        assert kept == decided(dataclasses.replace(views, memo=None), at(now), config)
        rounds += 1
        for raw in kept[0]:
            d = codec.decode(raw)
            assert isinstance(d, ev.TaskDispatched)
            log.append(d)
            log.append(started("g", d.task_id, d.node_id, d.attempt, t=now))
            running.append((now + d.expected_duration_s / SPEED[d.node_id] * 1.5, d))
        if not running:
            break
        running.sort(key=lambda r: (r[0], r[1].task_id))
        now, d = running.pop(0)
        fail = d.node_id == "n1" and d.attempt == 1 and int(d.task_id[1:]) % 2 == 0  # type a fails on n1: flagged
        done = ev.TaskCompleted(
            event_id=f"c:{d.task_id}:{d.attempt}",
            occurred_at=at(now),
            graph_id="g",
            task_id=d.task_id,
            node_id=d.node_id,
            attempt=d.attempt,
            outcome="failure" if fail else "success",
            exit_code=1 if fail else 0,
            duration_s=d.expected_duration_s / SPEED[d.node_id] * 1.5,
        )
        log.append(done)
    return rounds, flagged


def test_a_memo_kept_across_rounds_decides_exactly_what_none_does():
    runs = {policy: run(policy) for policy in ("eft", "seed", "fifo")}
    assert all(rounds >= 15 for rounds, _ in runs.values()), runs
    assert any(flagged for _, flagged in runs.values()), runs


def test_the_memo_starts_afresh_for_another_config_and_stays_bounded():
    memo = RoundMemo()
    a, b = ScoringConfig(), ScoringConfig(prior_samples=5.0)
    memo.bind(a)
    memo.said[NodeFacts(1.0, "no runs", 1.0)] = ("kept", "kept")
    memo.runs["g/t#1"] = ("g", "t")
    memo.streaks["n1"] = ({}, 3, False)
    memo.bind(a)
    assert memo.said and memo.runs and memo.streaks
    memo.bind(b)
    assert not (memo.said or memo.runs or memo.streaks) and memo.cfg is b
    memo.runs.update((f"g/t{i}#1", ("g", f"t{i}")) for i in range(MEMO_LIMIT + 1))  # one kind over the limit
    memo.said[NodeFacts(1.0, "no runs", 1.0)] = ("kept", "kept")
    memo.bind(b)
    assert not (memo.runs or memo.said)


def test_a_node_flagged_after_the_memo_saw_it_is_avoided():
    """The memo saw n1 before its streak: after three failures of type a in a row there, the next
    round with the same memo avoids n1 for a type-a task, as a round without a memo does."""
    log = Log()
    fails = [spec(f"f{i}", type="a") for i in range(3)]
    for e in (graph("g", *fails, spec("x", type="a")), registered("n1", slots=1), registered("n2", slots=1)):
        log.append(e)
    log.append(observed("n1", t=0))
    log.append(observed("n2", t=0))
    replayer = Replayer(log.messages)
    config = DeciderConfig(node_ttl_s=1e9)
    seq = log.messages[-1].seq
    views = replayer.views({"readiness": seq, "node-scores": seq}, config.scoring)
    assert decided(views, at(1), config)[0]  # the memo now knows n1 (no streak)
    for i in range(3):
        log.append(dispatched("g", f"f{i}", "n1", t=1 + i))
        log.append(completed("g", f"f{i}", "n1", "failure", t=1.5 + i))
    seq = log.messages[-1].seq
    views = replayer.views({"readiness": seq, "node-scores": seq}, config.scoring)
    kept = decided(views, at(10), config)
    assert kept == decided(dataclasses.replace(views, memo=None), at(10), config)
    x = next(codec.decode(raw) for raw in kept[0] if b'"task_id":"x"' in raw)
    assert isinstance(x, ev.TaskDispatched) and x.node_id == "n2"
    assert any(c.node_id == "n1" and c.reason.startswith("avoided: type a failed 3 times") for c in x.candidates)

"""A `RoundMemo` kept across rounds changes nothing a round decides: over a run whose nodes learn
different speeds and success rates for two task types (so their facts change between rounds),
every round's dispatches and reservations with the memo equal those without one, byte for byte,
under every policy."""

from __future__ import annotations

import dataclasses

from orchestrator.decide import DeciderConfig, plan
from orchestrator.replay import Replayer
from orchestrator.roundslots import NodeFacts, RoundMemo
from orchestrator.scoring import ScoringConfig
from schemas import codec
from schemas import events as ev
from tests.unit.builders import at, graph, observed, registered, spec, started
from tests.unit.test_replay import Log

SPEED = {"n1": 2.0, "n2": 1.0, "n3": 0.5}


def decided(views, now, config):
    out, reserved = plan(views, now, config)
    return [codec.encode(d.event) for d in out], sorted(reserved.items())


def run(policy: str) -> int:
    """Rounds checked; each decided with the replayer's kept memo and without any."""
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
    rounds, now = 0, 0.0
    for _ in range(200):
        seq = log.messages[-1].seq
        views = replayer.views({"readiness": seq, "node-scores": seq}, config.scoring)
        assert isinstance(views.memo, RoundMemo)
        kept = decided(views, at(now), config)
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
        fail = d.node_id == "n3" and d.attempt == 1 and int(d.task_id[1:]) % 2 == 0
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
    return rounds


def test_a_memo_kept_across_rounds_decides_exactly_what_none_does():
    for policy in ("eft", "seed", "fifo"):
        assert run(policy) >= 20


def test_the_memo_starts_afresh_for_another_config():
    memo = RoundMemo()
    a, b = ScoringConfig(), ScoringConfig(prior_samples=5.0)
    memo.bind(a)
    memo.said[NodeFacts(1.0, "no runs", 1.0)] = ("kept", "kept")
    memo.bind(a)
    assert memo.said
    memo.bind(b)
    assert not memo.said and memo.cfg is b

"""Replay keeps the ready set along its readiness fold (as the decider's index does) and it equals
the one computed from scratch at every sequence, also after the fold starts again; a run
recorded with it is reproduced byte for byte by ``check``."""

from __future__ import annotations

import dataclasses

from orchestrator.decision.decide import DECIDER_VERSION, DeciderConfig, decide
from orchestrator.decision.readyset import digest_of, ranked
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.replay.check import check
from orchestrator.replay.replayer import Replayer
from schemas import codec
from schemas import events as ev
from tests.unit.builders import at, completed, graph, observed, registered, spec, started
from tests.unit.test_replay import Log


def same_as_from_scratch(replayer: Replayer, seqs: dict[str, int], cfg: ScoringConfig, now_s: float) -> None:
    kept = replayer.views(seqs, cfg)
    scratch = dataclasses.replace(kept, ready_set=None)
    assert kept.ready_set is not None and len(kept.ready_set) == len(kept.ready or ())
    assert list(ranked(kept, at(now_s), cfg, False)) == list(ranked(scratch, at(now_s), cfg, False))
    assert digest_of(kept) == digest_of(scratch)


def recorded(cfg: ScoringConfig) -> Log:
    """A decider loop over a graph of chains (one task in three fails its first attempt and is
    retried), deciding after every event with the replayer's kept ready set."""
    log = Log()
    specs = [
        spec(f"t{i}", *((f"t{i - 3}",) if i >= 3 else ()), estimate_s=1.0 + i % 4, max_attempts=2) for i in range(12)
    ]
    for e in (graph("g", *specs), registered("n1", slots=2), registered("n2", slots=1), observed("n1", t=0)):
        log.append(e)
    log.append(observed("n2", t=0))
    replayer = Replayer(log.messages)
    config = DeciderConfig(scoring=cfg)
    running: list[ev.TaskDispatched] = []
    for step in range(60):
        seq = log.messages[-1].seq
        seqs = {"readiness": seq, "node-scores": seq}
        same_as_from_scratch(replayer, seqs, cfg, step)
        for d in decide(replayer.views(seqs, cfg), at(step), config):
            log.append(d.event)
            log.append(started("g", d.event.task_id, d.event.node_id, d.event.attempt, t=step))
            running.append(d.event)
        if running:
            e = running.pop(0)
            fail = int(e.task_id[1:]) % 3 == 0 and e.attempt == 1
            log.append(completed("g", e.task_id, e.node_id, "failure" if fail else "success", e.attempt, t=step + 0.5))
    return log


def test_a_run_recorded_with_the_kept_set_is_reproduced():
    for cfg in (ScoringConfig(), ScoringConfig(policy="fifo")):
        log = recorded(cfg)
        report = check(log.messages)
        assert report["decisions"] >= 12 and report["reproduced"] == report["decisions"], report["mismatches"][:1]
        assert report["mismatches"] == []


def test_the_kept_set_follows_the_fold_forward_and_after_a_rebuild():
    log = recorded(ScoringConfig())
    replayer = Replayer(log.messages)
    last = log.messages[-1].seq
    for seq in [*range(1, last + 1, 7), 20, last]:  # 20: behind the fold, which starts again
        same_as_from_scratch(replayer, {"readiness": seq, "node-scores": seq}, ScoringConfig(), 30.0)
    assert replayer.rebuilds >= 1


def test_decisions_name_the_decider_version():
    log = recorded(ScoringConfig())
    versions = {
        codec.decode(m.data, subject=m.subject, seq=m.seq).decider_version
        for m in log.messages
        if ".TaskDispatched." in m.subject
    }
    assert versions == {DECIDER_VERSION} and DECIDER_VERSION != "0.1.0"

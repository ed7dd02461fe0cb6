"""Replay: recorded decisions re-run with their recorded inputs; a nondeterministic decider is caught."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec

from orchestrator.decision.decide import DeciderConfig, decide
from orchestrator.replay.check import check
from orchestrator.replay.replayer import Replayer
from orchestrator.writeside.eventlog import StoredMessage
from schemas import codec
from schemas import subjects as S
from tests.unit.builders import at, graph, observed, registered, spec


class Log:
    """An in-memory stream: events stored with their subjects and sequences."""

    def __init__(self) -> None:
        self.messages: list[StoredMessage] = []

    def append(self, e) -> int:
        seq = len(self.messages) + 1
        self.messages.append(StoredMessage(seq=seq, subject=S.route(e)[1], headers={}, data=codec.encode(e)))
        return seq


def run(clock_skew_s: float = 0.0) -> Log:
    """A decider loop over a small graph; with a skew it decides with one clock and records another."""
    log = Log()
    for e in (
        graph("g", spec("a", estimate_s=5.0), spec("b", estimate_s=1.0), spec("c", "a")),
        registered("n1", slots=1),
        registered("n2", slots=1),
        observed("n1", t=1),
        observed("n2", t=1),
    ):
        log.append(e)
    config = DeciderConfig()
    for step in range(2):
        now = at(2 + step)
        seq = log.messages[-1].seq
        views = dataclasses.replace(
            Replayer(log.messages).views({"readiness": seq, "node-scores": seq}),
            seqs={"readiness": seq, "node-scores": seq},
        )
        for d in decide(views, now + timedelta(seconds=clock_skew_s), config):
            recorded = msgspec.structs.replace(d.event, now=now, occurred_at=now) if clock_skew_s else d.event
            log.append(recorded)
    return log


def test_every_recorded_decision_is_reproduced():
    report = check(run().messages)
    assert (report["decisions"], report["reproduced"], report["mismatches"]) == (2, 2, [])


def test_a_decider_that_reads_the_clock_is_caught_with_the_field_named():
    report = check(run(clock_skew_s=10.0).messages)
    assert report["decisions"] == 2 and report["reproduced"] == 0
    fields = {d["field"] for m in report["mismatches"] for d in m["differences"]}
    assert "candidates" in fields  # the scores carry the aging of a different now


def test_until_and_graph_limit_the_check():
    log = run()
    assert check(log.messages, until=5)["decisions"] == 0
    assert check(log.messages, graph="other")["decisions"] == 0

"""replay --check on several processes: the same report as one process, a mismatch still caught."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator.replay import check as replay_check
from orchestrator.replay.check import check
from tests.unit.test_replay import run


@dataclass
class Msg:
    seq: int
    subject: str
    data: bytes = b""


def test_ranges_cover_the_log_in_order_and_later_ranges_get_fewer_decisions(monkeypatch):
    monkeypatch.setattr(replay_check, "MIN_DECISIONS_PER_JOB", 10)
    messages = [
        Msg(i + 1, f"ev.task.g.t{i}.{'TaskDispatched' if i % 3 == 0 else 'TaskStarted'}.n1") for i in range(3000)
    ]
    ranges = replay_check.split(messages, None, 2)
    assert len(ranges) == 2
    assert ranges[0][0] == 0 and ranges[0][1] == ranges[1][0] and ranges[1][1] == len(messages)

    def decisions(lo: int, hi: int) -> int:
        return sum(".TaskDispatched." in m.subject for m in messages[lo:hi])

    assert decisions(*ranges[0]) > decisions(*ranges[1]) > 0  # the second range folds the first's messages too
    assert replay_check.split(messages, None, 1) == [(0, len(messages))]
    assert replay_check.split(messages[:20], None, 2) == [(0, 20)]  # too few decisions to fork


@pytest.mark.parametrize("skew", [0.0, 10.0])
def test_two_processes_report_what_one_does(monkeypatch, skew):
    monkeypatch.setattr(replay_check, "MIN_DECISIONS_PER_JOB", 1)
    messages = run(clock_skew_s=skew).messages
    one, two = check(messages), check(messages, jobs=2)
    assert two["jobs"] == 2 and one["jobs"] == 1
    keys = ("decisions", "reproduced", "mismatches", "generations")
    assert {k: two[k] for k in keys} == {k: one[k] for k in keys}
    assert two["decisions"] == 2
    if skew:  # the nondeterministic decider is caught by the split check too, the field named
        assert two["reproduced"] == 0
        assert "candidates" in {d["field"] for m in two["mismatches"] for d in m["differences"]}
    else:
        assert two["reproduced"] == 2

"""The quality protocol and the result event of a run (pure, table-driven)."""

from __future__ import annotations

import logging

import pytest

from node_agent.execution import _remove
from node_agent.report import RunReport, completion, lost, outcome_of, parse_quality, read_quality
from node_agent.runner import RunResult
from node_agent.scope import Change
from schemas import events as ev
from tests.unit.builders import T0

D = ev.TaskDispatched(
    event_id="dispatch:g:t:2",
    occurred_at=T0,
    graph_id="g",
    task_id="t",
    node_id="n1",
    attempt=2,
    command="true",
    expected_duration_s=12.0,
)


@pytest.mark.parametrize(
    ("text", "quality", "noted"),
    [
        ("0.87\n", 0.87, False),
        ("1", 1.0, False),
        ("0", 0.0, False),
        ("  0.5 extra words", 0.5, False),
        ("", None, False),
        ("1.5", None, True),
        ("-0.1", None, True),
        ("nan", None, True),
        ("good", None, True),
    ],
)
def test_parse_quality(text, quality, noted):
    q, note = parse_quality(text)
    assert q == quality
    assert bool(note) is noted


def test_read_quality_missing_file_is_no_score(tmp_path):
    assert read_quality(tmp_path / "none") == (None, "")
    (tmp_path / "q").write_text("0.25")
    assert read_quality(tmp_path / "q") == (0.25, "")


def test_removing_the_quality_file_says_nothing_when_there_is_none(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="niyantra.agent")
    _remove(tmp_path / "none")  # the usual case before and after a run: not worth a warning
    assert caplog.records == []
    (tmp_path / "file").write_text("0.5")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("left by the task")
    _remove(tmp_path / "file")
    _remove(tmp_path / "dir")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("report", "outcome", "error", "retryable"),
    [
        (RunReport(RunResult(0, 1.0)), "success", "", True),
        (RunReport(RunResult(3, 1.0)), "failure", "exit code 3", True),
        (RunReport(RunResult(127, 1.0)), "failure", "exit code 127", False),
        (RunReport(RunResult(-15, 1.0, timed_out=True, error="timed out after 1.0s")), "failure", "timed out", True),
        (
            RunReport(RunResult(-15, 1.0, cancelled=True), cancel_reason="task cancelled by ana"),
            "failure",
            "cancelled: task",
            False,
        ),
        (RunReport(RunResult(None, 0.0, error="cannot start: no such dir")), "failure", "cannot start", True),
        (RunReport(RunResult(0, 1.0), violations=(Change("x", "created"),)), "failure", "scope violation", False),
    ],
)
def test_outcomes(report, outcome, error, retryable):
    o, e, r = outcome_of(report)
    assert (o, r) == (outcome, retryable)
    assert e.startswith(error)


def test_completion_carries_attempt_expectation_quality_log_and_redacts():
    r = RunReport(
        RunResult(0, 1.23456),
        output=b"x" * 5000 + b"tail",
        violations=(Change("leak-hunter22.txt", "created"),),
        quality=0.9,
        log_subject="log.g.t.2.run",
    )
    e = completion(D, r, T0, secrets=("hunter22",))
    assert (e.attempt, e.node_id, e.expected_duration_s, e.duration_s) == (2, "n1", 12.0, 1.235)
    assert (e.quality, e.log_subject, e.phase, e.retryable) == (0.9, "log.g.t.2.run", "run", False)
    assert e.scope_violations == ("leak-***.txt",)
    assert "hunter22" not in e.error and "leak-***.txt (created)" in e.error
    assert len(e.output_tail) == 2000 and e.output_tail.endswith("tail")
    assert e.event_id == "complete:g:t:2"


def test_completion_reports_what_the_agent_fetched_before_the_run():
    e = completion(D, RunReport(RunResult(0, 1.0), fetched_bytes=4096, fetch_seconds=0.25), T0)
    assert (e.fetched_bytes, e.fetch_seconds, e.duration_s) == (4096, 0.25, 1.0)  # (the run's time excludes it)
    assert (completion(D, RunReport(RunResult(0, 1.0)), T0).fetched_bytes) == 0


def test_a_preflight_result_is_its_own_event():
    pre = ev.TaskDispatched(**{**{f: getattr(D, f) for f in D.__struct_fields__}, "phase": "preflight"})
    e = completion(pre, RunReport(RunResult(0, 0.1)), T0)
    assert (e.phase, e.event_id, e.causation_id) == ("preflight", "preflight:g:t:2", D.event_id)


def test_lost_has_the_id_every_reporter_uses():
    e = lost(D, "gone", T0)
    assert (e.event_id, e.attempt, e.node_id, e.reason) == ("lost:g:t:2", 2, "n1", "gone")

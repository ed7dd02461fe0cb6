"""The gantt picture: a bar per attempt on its node's lane, failures, retries and the critical path."""

from __future__ import annotations

import pytest

from orchestrator.reports.gantt import bars_of, gantt_html, gantt_svg, mark_critical
from tests.unit.builders import completed, dispatched, graph, spec, started


def run() -> list:
    events = [
        graph("g", spec("a"), spec("b", "a", max_attempts=2), spec("c", "a")),
        dispatched("g", "a", "n1", t=0),
        started("g", "a", "n1", t=0),
        completed("g", "a", "n1", t=2),
        dispatched("g", "b", "n1", t=2),
        started("g", "b", "n1", t=2),
        completed("g", "b", "n1", "failure", t=3),
        dispatched("g", "c", "n2", t=2),
        started("g", "c", "n2", t=2),
        completed("g", "c", "n2", t=4),
        dispatched("g", "b", "n2", attempt=2, t=5),
        started("g", "b", "n2", attempt=2, t=5),
        completed("g", "b", "n2", attempt=2, t=8),
    ]
    return list(enumerate(events, 1))


def test_bars_and_the_realised_critical_path():
    bars, deps = bars_of(run(), "g")
    assert [(b.task, b.attempt, b.node, b.outcome) for b in bars] == [
        ("a", 1, "n1", "success"),
        ("b", 1, "n1", "failure"),
        ("c", 1, "n2", "success"),
        ("b", 2, "n2", "success"),
    ]
    assert mark_critical(bars, deps) == ["a", "b"]
    assert [b.critical for b in bars] == [True, False, False, True]


def test_svg_shows_failures_retries_and_the_path():
    svg = gantt_svg(run(), "g")
    assert svg.startswith("<svg") and svg.count("<rect") >= 4 + 2
    assert "#d64541" in svg and 'stroke-dasharray="4 2"' in svg and "critical path a → b" in svg
    assert "b attempt 2 on n2: success" in svg
    assert "<svg" in gantt_html(svg, "g")
    with pytest.raises(ValueError, match="no dispatched task"):
        gantt_svg(run(), "other")

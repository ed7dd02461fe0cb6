"""`scripts/bench_loop` turns the decider's round timings into latency figures (pure)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "loop_latency", Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "loop_latency.py"
)
loop_latency = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(loop_latency)  # type: ignore[union-attr]

MS = 1_000_000  # ns


def test_each_dispatch_counts_from_the_view_change_to_its_own_ack():
    rounds = [
        {"n": 1, "view_at": 1 * MS, "woke": 2 * MS, "decided": 3 * MS, "acked": [5 * MS]},
        {"n": 2, "view_at": 100 * MS, "woke": 101 * MS, "decided": 110 * MS, "acked": [120 * MS, 140 * MS]},
    ]
    f = loop_latency.loop_figures(rounds)
    v = f["view_change_to_append_ms"]
    assert (v["n"], v["p50"], v["max"]) == (3, 20.0, 40.0)
    assert v["share_within_10ms"] == round(1 / 3, 4)
    assert f["decide_ms"]["max"] == 9.0 and f["dispatches_per_round"]["max"] == 2.0
    made = f["view_change_to_decided_ms"]  # per dispatch: 2 ms once, 10 ms twice
    assert (made["n"], made["max"], made["share_within_10ms"]) == (3, 10.0, 1.0)


def test_no_rounds_give_empty_figures():
    f = loop_latency.loop_figures([])
    assert f["view_change_to_append_ms"] == {"n": 0, "share_within_10ms": None}

"""`scripts/bench` sums its parts up as one row per measure: goal, figure, met (pure)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_suite", Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "suite.py"
)
suite = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(suite)  # type: ignore[union-attr]

THROUGHPUT = {
    "niyantra": {"independent": {"tasks_per_s": 300.0, "processes": {"decider": {"peak_rss_mib": 70.0}}}},
    "dask": {"independent": {"tasks_per_s": 100.0}},
    "ratio_niyantra_over_dask": {"independent": 3.0},
}


def met(rows: list[dict], prefix: str) -> list:
    return [r["met"] for r in rows if r["measure"].startswith(prefix)]


@pytest.mark.parametrize(
    ("parts", "prefix", "expected"),
    [
        ({"throughput": THROUGHPUT}, "throughput independent", [True]),
        ({"throughput": {**THROUGHPUT, "ratio_niyantra_over_dask": {"independent": 1.99}}}, "throughput", [False]),
        ({"throughput": THROUGHPUT}, "peak RSS", [None]),
        (
            {
                "throughput": {
                    "niyantra": {"layered": {"cpu_ms_per_task": {"total": 8.0, "nats-server": 1.8}}},
                    "cpu_budget_ms_per_task_for_2x_dask": {"layered": 1.0},
                }
            },
            "CPU ms per task",
            [False],
        ),
        ({"decision_latency": {"view_change_to_append_ms": {"p50": 2, "p99": 10.0}}}, "decision latency", [True]),
        ({"decision_latency": {"view_change_to_append_ms": {"p50": 2, "p99": 10.5}}}, "decision latency", [False]),
        (
            {
                "decision_latency": {"view_change_to_append_ms": {"p50": 20, "p99": 300}},
                "decision_latency_paced": {"view_change_to_append_ms": {"p50": 2, "p99": 9.0}},
            },
            "decision latency",
            [False, True],
        ),
        (
            {"decision_latency_paced": {"view_change_to_append_ms": {"p99": 9.0}, "append_floor_loaded": {}}},
            "a bare append",
            [None],
        ),
        ({"view_rebuild": {"events": 10, "rebuild": {"events_per_s": 99_999}}}, "view rebuild", [False]),
        ({"view_rebuild": {"events": 10, "rebuild": {"events_per_s": 100_000}}}, "view rebuild", [True]),
        (
            {"archive": {"archive_events": 5, "count_by_type_s": 0.2, "p99_duration_by_node_s": 1.0}},
            "archive",
            [True, False],
        ),
        ({"archive": {"replay_check": {"jobs_1": {"events_per_s": 60_000}}}}, "replay", [True]),
        ({"makespan": {"summary": {"eft": {"by_platform": {"a": 0.99, "b": 1.01}}}}}, "makespan", [False]),
        (
            {"makespan": {"summary": {"eft": {"by_platform": {"a": 0.99}}, "seed": {"by_platform": {"a": 1.3}}}}},
            "makespan",
            [True, None],
        ),
        (
            {"locality": {"bandwidth": "10MB/s", "geomean_over_heft": 1.01}},
            "makespan with transfers at 10MB/s",
            [False],
        ),
        ({"locality": {"bandwidth": "1GB/s", "geomean_over_heft": 0.99}}, "makespan with transfers", [True]),
        ({"locality": {"error": "exit 1"}}, "makespan with transfers", []),
        ({"cpu_floor": {"rows": {"c3": {"ms_per_task": {"total": 3.7}}}}}, "CPU ms per task floor", [False]),
        ({"cpu_floor": {"rows": {"c3": {"ms_per_task": {"total": 2.0}}}}}, "CPU ms per task floor", [True]),
        ({"cpu_floor": {"rows": {"a3": {"ms_per_task": {"total": 0.9}}}}}, "CPU ms per task floor", []),
        ({"throughput": {"error": "exit 1"}, "archive": {"error": "exit 2"}}, "", []),
    ],
)
def test_each_measure_is_judged_against_its_goal(parts, prefix, expected):
    assert met(suite.summarize(parts), prefix) == expected


def test_only_the_file_streams_count_as_fsynced_writes():
    parts = {
        "throughput": {
            "niyantra": {
                "layered": {
                    "cpu_ms_per_task": {"total": 8.0},
                    "stored_messages_per_task": {"EVENTS": 3.0, "LOGS": 1.0, "KV_view_readiness": 5.5},
                }
            },
            "cpu_budget_ms_per_task_for_2x_dask": {"layered": 1.0},
        }
    }
    [row] = [r for r in suite.summarize(parts) if r["measure"].startswith("CPU ms per task")]
    assert row["measured"]["fsynced_messages_per_task"] == 4.0  # the view buckets are memory storage
    assert row["measured"]["view_writes_per_task"] == 5.5

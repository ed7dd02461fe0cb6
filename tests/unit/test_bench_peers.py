"""scripts/bench's peers: the summary sets each peer beside niyantra, and the runners' pure helpers
(layers of a workload, commands in a Redis append-only file) (pure, no peer installed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "peers"
sys.path.insert(0, str(PEERS))
_spec = importlib.util.spec_from_file_location("bench_suite_peers", PEERS.parent / "suite.py")
suite = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(suite)  # type: ignore[union-attr]

import common  # noqa: E402
import redis_server  # noqa: E402

OURS = {
    "niyantra": {"layered": {"tasks_per_s": 300.0, "cpu_ms_per_task": {"total": 5.0, "total_with_task_processes": 7.0}}}
}


def rows(peers: dict) -> dict[str, dict]:
    return {r["measure"]: r for r in suite.summarize({"throughput": OURS, "peers": {"peers": peers}})}


@pytest.mark.parametrize(
    ("peers", "durable", "shell"),
    [
        ({"celery": {"layered": {"tasks_per_s": 150.0}}, "dbos": {"layered": {"tasks_per_s": 50.0}}}, True, None),
        ({"celery": {"layered": {"tasks_per_s": 151.0}}}, False, None),
        ({"prefect": "prefect exited 1: boom", "dask_shell": {"layered": {"tasks_per_s": 301.0}}}, None, False),
        ({"dask_shell": {"layered": {"tasks_per_s": 300.0}}}, None, True),
        ({"airflow": {"layered": "layered failed: TimeoutError"}}, None, None),
    ],
)
def test_niyantra_is_judged_against_the_best_durable_peer_and_dask_running_the_shell(peers, durable, shell):
    got = rows(peers)
    best = got.get("throughput layered, niyantra / best durable peer")
    assert (best and best["met"]) == durable
    vs_shell = got.get("throughput layered, niyantra / Dask running the shell")
    assert (vs_shell and vs_shell["met"]) == shell


def test_a_peer_that_could_not_run_keeps_its_reason_in_the_table():
    table = rows({"prefect": "could not install prefect: exit 1"})[
        "peers, layered (tasks/s, CPU ms per task with the task shells, stored per task)"
    ]["measured"]
    assert table["prefect"] == "could not install prefect: exit 1"
    assert table["niyantra"]["cpu_ms_per_task"] == 7.0  # counted as the peers are: with the task shells


def test_layers_follow_the_deepest_dependency():
    tasks = {"a": [], "b": ["a"], "c": [], "d": ["b", "c"]}
    assert common.layers_of(tasks) == [["a", "c"], ["b"], ["d"]]
    layered = common.workloads(0.03)["layered"]
    assert [len(layer) for layer in common.layers_of(layered)] == [100, 100, 100]


@pytest.mark.parametrize(
    ("aof", "commands"),
    [
        (b"", 0),
        (b"*1\r\n$5\r\nMULTI\r\n", 1),
        (b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n*1\r\n$4\r\nEXEC\r\n", 2),  # a value holding CRLF
    ],
)
def test_aof_commands_are_counted_from_resp(aof, commands):
    assert redis_server.count_commands(aof) == commands

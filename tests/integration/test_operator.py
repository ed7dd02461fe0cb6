"""The operator's questions from the log: explain a task, tail events, the metrics table."""

from __future__ import annotations

import asyncio
import json

import nats
from typer.testing import CliRunner

from orchestrator.cli.main import app
from projections.archive.projector import Archiver
from tests.conftest import assert_eventually
from tests.integration.harness import layered_graph, submit, system
from tests.integration.test_pipeline import _all_done

runner = CliRunner()


async def _run_graph(url: str, tmp_path, graph_id: str = "ops") -> None:
    await submit(url, layered_graph(graph_id, layers=2, width=2, command="true"))
    async with system(url, tmp_path / "work", agents=2, slots=1):
        await assert_eventually(lambda: _all_done(url, graph_id), timeout=60, message="graph done")


async def test_explain_shows_every_candidate_and_the_choice(nats_server, tmp_path):
    await _run_graph(nats_server.url, tmp_path)
    result = await asyncio.to_thread(runner.invoke, app, ["explain", "L1-0", "--json", "--nats-url", nats_server.url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["graph"] == "ops" and report["task"] == "L1-0"
    [d] = report["decisions"]
    assert {c["node"] for c in d["candidates"]} == {"node-1", "node-2"}
    assert [c["node"] for c in d["candidates"] if c["selected"]] == [d["node"]]
    assert all(c["reason"] for c in d["candidates"]) and d["view_seqs"] and d["world_hash"]
    assert [t["type"] for t in report["timeline"]] == ["TaskDispatched", "TaskStarted", "TaskCompleted"]
    text = await asyncio.to_thread(runner.invoke, app, ["explain", "ops/L1-0", "--nats-url", nats_server.url])
    assert text.exit_code == 0 and "attempt 1 →" in text.output and "✓" in text.output
    missing = await asyncio.to_thread(runner.invoke, app, ["explain", "nope", "--nats-url", nats_server.url])
    assert missing.exit_code == 2 and "no events for task 'nope'" in missing.output


async def test_events_filters_by_task_node_and_type(nats_server, tmp_path):
    await _run_graph(nats_server.url, tmp_path)
    url = ["--nats-url", nats_server.url]
    by_task = await asyncio.to_thread(runner.invoke, app, ["events", "--task", "L0-1", "--json", *url])
    types = [json.loads(line)["event"]["type"] for line in by_task.output.splitlines()]
    assert types == ["TaskDispatched", "TaskStarted", "TaskCompleted"]
    by_type = await asyncio.to_thread(runner.invoke, app, ["events", "--type", "TaskCompleted", "--last", "100", *url])
    assert len(by_type.output.splitlines()) == 4 and all(
        "TaskCompleted" in line for line in by_type.output.splitlines()
    )
    by_node = await asyncio.to_thread(
        runner.invoke, app, ["events", "--node", "node-2", "--json", "--last", "1000", *url]
    )
    nodes = {json.loads(line)["event"].get("node_id") for line in by_node.output.splitlines()}
    assert nodes == {"node-2"}
    last3 = await asyncio.to_thread(runner.invoke, app, ["events", "--last", "3", *url])
    assert len(last3.output.splitlines()) == 3


async def test_metrics_from_the_archive(nats_server, tmp_path):
    await _run_graph(nats_server.url, tmp_path)
    directory = tmp_path / "archive"
    nc = await nats.connect(nats_server.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(Archiver(nc, directory, max_wait=0.05).run(stop, ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    stop.set()
    await task
    await nc.close()
    result = await asyncio.to_thread(runner.invoke, app, ["metrics", "--json", "--archive-dir", str(directory)])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert {
        k: m[k] for k in ("graphs_completed", "tasks_generated", "first_attempt_success_rate", "graph_depth_max")
    } == {
        "graphs_completed": 1,
        "tasks_generated": 0,
        "first_attempt_success_rate": 1.0,
        "graph_depth_max": 2,
    }
    assert m["decisions"] == 4 and m["decision_latency_ms_avg"] >= 0 and 0 < m["node_utilization"] <= 1


async def test_verify_passes_on_a_real_run_and_reports_a_forged_double_dispatch(nats_server, tmp_path):
    from orchestrator.writeside.eventlog import EventLog
    from tests.unit.builders import dispatched

    await _run_graph(nats_server.url, tmp_path)
    ok = await asyncio.to_thread(runner.invoke, app, ["verify", "--json", "--nats-url", nats_server.url])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["violations"] == [] and report["checked"]["I1"]["checks"] == 4
    nc = await nats.connect(nats_server.url)
    await EventLog(nc).append_event(dispatched("ops", "L0-0", "node-9"))  # unguarded: what a buggy writer could do
    await nc.close()
    bad = await asyncio.to_thread(runner.invoke, app, ["verify", "--nats-url", nats_server.url])
    assert bad.exit_code == 1 and "I1" in bad.output and "ops/L0-0" in bad.output


async def test_replay_check_reproduces_every_decision_of_a_real_run(nats_server, tmp_path):
    await _run_graph(nats_server.url, tmp_path)
    url = ["--nats-url", nats_server.url]
    result = await asyncio.to_thread(runner.invoke, app, ["replay", "--check", "--json", *url])
    assert result.output.startswith("{"), (result.output, result.exception)
    report = json.loads(result.output)
    assert report["decisions"] == 4 and report["reproduced"] == 4 and report["mismatches"] == [], report
    assert result.exit_code == 0
    world = await asyncio.to_thread(runner.invoke, app, ["replay", "--at", "1", "--json", *url])
    states = {t["id"]: t["state"] for t in json.loads(world.output)["tasks"]}
    assert states == {"L0-0": "ready", "L0-1": "ready", "L1-0": "pending", "L1-1": "pending"}


async def test_whatif_replays_the_recorded_run_with_another_config(nats_server, tmp_path):
    await _run_graph(nats_server.url, tmp_path)
    cfg = tmp_path / "fifo.toml"
    cfg.write_text('[decider]\npolicy = "fifo"\naging_per_s = 0.1\n')
    url = ["--nats-url", nats_server.url]
    result = await asyncio.to_thread(runner.invoke, app, ["whatif", "--config", str(cfg), "--json", *url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["graph"] == "ops" and report["recorded_policy"] == "eft"
    assert report["tasks_with_recorded_durations"] == 4 and report["recorded_makespan_s"] > 0
    assert report["simulated_baseline_makespan_s"] >= 0 and report["alternative"]["policy"] == "fifo"
    bad = tmp_path / "bad.toml"
    bad.write_text("[decider]\npolicyy = 'x'\n")
    refused = await asyncio.to_thread(runner.invoke, app, ["whatif", "--config", str(bad), *url])
    assert refused.exit_code == 2 and "unknown key(s) policyy" in refused.output

"""The command line against a real server: submit, status, bad input, schema."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.writeside.eventlog import EventLog

runner = CliRunner()


async def _last_seq(url: str) -> int:
    nc = await nats.connect(url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        return await log.last_seq()
    finally:
        await nc.close()


GOOD = '[graph]\nid = "g1"\n[[tasks]]\nid = "T-001"\ncommand = "sleep 1 && echo built"\ndepends_on = []\n'


def test_submit_then_resubmit_same_content_is_accepted_once(nats_server, tmp_path):
    path = tmp_path / "g1.toml"
    path.write_text(GOOD)
    ok = runner.invoke(app, ["submit", str(path), "--nats-url", nats_server.url])
    assert ok.exit_code == 0, ok.output
    assert "submitted graph g1: 1 tasks" in ok.output
    again = runner.invoke(app, ["submit", str(path), "--nats-url", nats_server.url])
    assert again.exit_code == 0 and "already submitted with the same content; nothing written" in again.output
    assert asyncio.run(_last_seq(nats_server.url)) == 1


def test_other_content_under_an_existing_id_is_refused(nats_server, tmp_path):
    path = tmp_path / "g1.toml"
    path.write_text(GOOD)
    assert runner.invoke(app, ["submit", str(path), "--nats-url", nats_server.url]).exit_code == 0
    other = tmp_path / "other.toml"
    other.write_text(GOOD.replace("sleep 1", "sleep 2"))
    result = runner.invoke(app, ["submit", str(other), "--nats-url", nats_server.url])
    assert result.exit_code == 2
    assert "graph 'g1' already exists with different content" in result.output
    assert asyncio.run(_last_seq(nats_server.url)) == 1


def test_status_json_shape(nats_server, tmp_path):
    path = tmp_path / "g1.toml"
    path.write_text(GOOD)
    runner.invoke(app, ["submit", str(path), "--nats-url", nats_server.url])
    from projections.runner import run_projector

    async def project_once() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(run_projector("readiness", nats_server.url, stop, ready.set))
        await asyncio.wait_for(ready.wait(), 20)
        stop.set()
        await task

    asyncio.run(project_once())
    result = runner.invoke(app, ["status", "--json", "--nats-url", nats_server.url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    [task] = data["tasks"]
    assert {k: task[k] for k in ("id", "graph", "state", "node", "attempt")} == {
        "id": "T-001",
        "graph": "g1",
        "state": "ready",
        "node": None,
        "attempt": 0,
    }


def test_unreachable_server_is_one_clear_line(tmp_path):
    path = tmp_path / "g1.toml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["submit", str(path), "--nats-url", "nats://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "cannot connect to NATS at nats://127.0.0.1:1" in result.output


def test_schema_lists_every_event():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    names = set(schema["$defs"])
    assert {
        "GraphSubmitted",
        "NodeRegistered",
        "NodeObserved",
        "TaskDispatched",
        "TaskStarted",
        "TaskCompleted",
    } <= names


UNREACHABLE = [
    ["status"],
    ["wait"],
    ["watch"],
    ["status", "--json"],
    ["snapshot", "--json"],
    ["explain", "T-1"],
    ["why", "T-1"],
    ["events"],
    ["verify"],
    ["replay", "--check"],
    ["replay", "--at", "3"],
    ["gantt", "g", "--out", "x.svg"],
    ["approve", "g/T-1", "--by", "ana"],
    ["reject", "g/T-1", "--by", "ana"],
    ["cancel", "g", "--by", "ana"],
    ["pause", "--by", "ana"],
    ["resume", "--by", "ana"],
    ["submit", "examples/demo.toml"],
    ["artifacts", "list"],
    ["artifacts", "get", "0123456789abcdef"],
    ["artifacts", "gc", "--dry-run"],
]


@pytest.mark.parametrize("args", UNREACHABLE, ids=lambda a: " ".join(a))
def test_every_command_says_an_unreachable_server_in_one_line(args):
    result = runner.invoke(app, [*args, "--nats-url", "nats://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot connect to NATS at nats://127.0.0.1:1" in lines[0], result.output
    assert "Traceback" not in result.output


def test_unknown_ids_are_one_line(nats_server):
    url = ["--nats-url", nats_server.url]
    for args, message in (
        (["why", "nope"], "no task 'nope'"),
        (["explain", "nope"], "no events for task 'nope'"),
        (["approve", "g/nope", "--by", "ana"], "no graph 'g'"),
        (["gantt", "nope", "--out", "x.svg"], "has no dispatched task"),
    ):
        result = runner.invoke(app, [*args, *url])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_help_documents_exit_codes():
    result = runner.invoke(app, ["--help"])
    assert "Exit codes" in result.output and "--debug" in result.output

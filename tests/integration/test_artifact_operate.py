"""`niyantra artifacts list|get|gc` and the library under it, on a real server and a real log."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from node_agent.artifacts.collect import collect_outputs
from node_agent.artifacts.operate import collect_garbage, list_artifacts
from node_agent.artifacts.store import ArtifactStore
from orchestrator.cli.main import app
from orchestrator.graphs.validation import GraphSpec
from orchestrator.writeside.eventlog import EventLog
from projections.runner import run_projector
from schemas import events as ev
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.harness import submit

runner = CliRunner()


def completion(graph: str, task: str, records, at: datetime, outcome="success") -> ev.TaskCompleted:
    return ev.TaskCompleted(
        event_id=f"done-{graph}-{task}-{outcome}",
        occurred_at=at,
        graph_id=graph,
        task_id=task,
        node_id="node-1",
        attempt=1,
        outcome=outcome,
        outputs=tuple(records),
    )


@pytest.fixture
async def recorded(nc, tmp_path):
    """A link task's outputs stored and recorded, a failed attempt's, and one blob nobody refers to."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "example").write_bytes(b"#!/bin/sh\necho hello from example\n")
    os.chmod(ws / "example", 0o755)
    (ws / "libz.a").write_bytes(os.urandom(40_000))
    (ws / "stray").write_bytes(b"not referenced")
    store = ArtifactStore(nc)
    await store.ensure_bucket()
    linked = (await collect_outputs(ws, ["example", "libz.a"], store)).records
    stray = await store.put_file(ws / "stray")
    log = EventLog(nc)
    await log.ensure_stream()
    now = datetime.now(UTC)
    await log.append_event(completion("zlib-build-1", "link", linked, now))
    await log.append_event(completion("zlib-build-1", "broken", linked[:1], now, outcome="failure"))
    return ws, linked, stray.digest


async def test_list_shows_each_blob_with_who_refers_to_it(nc, recorded):
    _, linked, stray = recorded
    rows = {r.digest: r for r in await list_artifacts(nc)}
    assert set(rows) == {linked[0].digest, linked[1].digest, stray}
    assert [(x.graph_id, x.task_id, x.path) for x in rows[linked[0].digest].refs] == [
        ("zlib-build-1", "link", "example")
    ]
    assert rows[stray].refs == () and rows[stray].size == len(b"not referenced")


def cli(*args: str, url: str):
    return runner.invoke(app, ["artifacts", *args, "--nats-url", url])


async def test_the_cli_lists_and_fetches_a_tasks_output_runnable(nats_server, recorded, tmp_path):
    _, linked, stray = recorded
    listed = await asyncio.to_thread(cli, "list", "--json", url=nats_server.url)
    assert listed.exit_code == 0, listed.output
    doc = {d["digest"]: d for d in json.loads(listed.stdout)}
    assert doc[stray]["refs"] == [] and doc[linked[1].digest]["refs"][0]["path"] == "libz.a"

    out = tmp_path / "new folder" / "fetched example"
    got = await asyncio.to_thread(
        cli, "get", "example", "--graph", "zlib-build-1", "--task", "link", "-o", str(out), url=nats_server.url
    )
    assert got.exit_code == 0, got.output
    assert out.read_bytes() == b"#!/bin/sh\necho hello from example\n" and stat.S_IMODE(out.stat().st_mode) == 0o755
    proc = await asyncio.create_subprocess_exec(str(out), stdout=asyncio.subprocess.PIPE)
    assert (await proc.communicate())[0] == b"hello from example\n" and proc.returncode == 0  # it runs

    by_prefix = await asyncio.to_thread(cli, "get", stray[:10], "-o", str(tmp_path / "s"), url=nats_server.url)
    assert by_prefix.exit_code == 0 and (tmp_path / "s").read_bytes() == b"not referenced"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "zlib.pc", "--graph", "zlib-build-1", "--task", "link"], "has no output 'zlib.pc'"),
        (["get", "example", "--graph", "zlib-build-1", "--task", "broken"], "no successful completion"),
        (["get", "0000000000"], "no blob sha256:0000000000"),
        (["get", "x", "--task", "link"], "--task needs --graph"),
    ],
)
async def test_a_bad_get_is_one_line_naming_what_is_missing(nats_server, recorded, tmp_path, args, message):
    result = await asyncio.to_thread(cli, *args, "-o", str(tmp_path / "o"), url=nats_server.url)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


async def test_gc_keeps_what_a_live_task_or_a_recent_completion_needs(nc, nats_server, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("needed.o", "recent.o", "old.o", "stray"):
        (ws / name).write_bytes(name.encode() * 1000)
    store = ArtifactStore(nc)
    await store.ensure_bucket()
    rec = {r.path: r for r in (await collect_outputs(ws, ["needed.o", "recent.o", "old.o", "stray"], store)).records}
    spec = GraphSpec(
        id="live",
        title="",
        tasks=(TaskSpec(id="compile", command="true"), TaskSpec(id="link", command="true", depends_on=("compile",))),
    )
    await submit(nats_server.url, spec)
    stop, ready = asyncio.Event(), asyncio.Event()
    projector = asyncio.create_task(run_projector("readiness", nats_server.url, stop, ready.set))
    try:
        log = EventLog(nc)
        now = datetime.now(UTC) + timedelta(hours=2)  # every blob is past the 1 h grace
        await log.append_event(completion("live", "compile", [rec["needed.o"]], now - timedelta(days=90)))
        await log.append_event(completion("done", "a", [rec["recent.o"]], now - timedelta(days=2)))
        await log.append_event(completion("done", "b", [rec["old.o"]], now - timedelta(days=90)))

        async def view_has_link() -> bool:
            from orchestrator.reports.queries import read_status

            return any(t["id"] == "link" for t in (await read_status(nc)).tasks)

        await assert_eventually(view_has_link, timeout=20, message="readiness view with the live graph")
        dry = await collect_garbage(nc, now=now, keep_for=timedelta(days=30), dry_run=True)
        assert set(dry.plan.remove) == {rec["old.o"].digest, rec["stray"].digest} and dry.removed == ()
        assert len(await store.blobs()) == 4  # a dry run removes nothing
        reasons = dict(dry.plan.keep)
        assert "needed by a task that has not ended" in reasons[rec["needed.o"].digest]
        assert "referenced by done/a" in reasons[rec["recent.o"].digest]

        report = await collect_garbage(nc, now=now, keep_for=timedelta(days=30))
        assert set(report.removed) == {rec["old.o"].digest, rec["stray"].digest} and len(report.orphans_purged) == 2
        assert {b.digest for b in await store.blobs()} == {rec["needed.o"].digest, rec["recent.o"].digest}
        assert len(await store.chunk_subjects()) == 2  # the removed blobs' chunks are gone too
    finally:
        stop.set()
        await projector


async def test_the_cli_gc_on_fresh_blobs_removes_nothing(nats_server, recorded):
    result = await asyncio.to_thread(cli, "gc", "--json", url=nats_server.url)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["removed"] == [] and len(doc["kept"]) == 3  # the stray blob too: within the grace

"""The archive: every event into Parquet exactly once (also across kill -9), and DuckDB views."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nats
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.writeside.eventlog import Append, EventLog, event_append
from projections.archive.projector import (
    Archiver,
    archive_connection,
    archive_row,
    archived_through,
    remove_partial,
    write_parquet,
)
from projections.archive.query import run_query
from schemas import events as ev
from tests.conftest import assert_eventually
from tests.integration.harness import layered_graph, submit, system
from tests.unit.builders import T0

runner = CliRunner()


def test_archive_row_keeps_common_fields_and_the_whole_event():
    e = ev.TaskStarted(event_id="s1", occurred_at=T0, graph_id="g", task_id="A", node_id="n1", attempt=2)
    from schemas.codec import encode

    row = archive_row(7, "ev.task.g.A.TaskStarted", encode(e), T0)
    assert {k: row[k] for k in ("seq", "type", "graph_id", "task_id", "node_id", "attempt", "event_id")} == {
        "seq": 7,
        "type": "TaskStarted",
        "graph_id": "g",
        "task_id": "A",
        "node_id": "n1",
        "attempt": 2,
        "event_id": "s1",
    }
    assert json.loads(row["json"])["attempt"] == 2


def test_a_malformed_event_is_archived_marked_with_the_reason():
    row = archive_row(3, "ev.node.x.Bad", b'{"type": "NoSuchEvent"}', T0)
    assert row["type"] == "_malformed" and "seq 3" in row["error"] and row["json"] == '{"type": "NoSuchEvent"}'


def test_the_files_are_the_checkpoint(tmp_path):
    (tmp_path / "day=2026-01-01").mkdir()
    (tmp_path / "day=2026-01-01" / "events-000000000001-000000000040.parquet").write_bytes(b"")
    (tmp_path / "day=2026-01-02").mkdir()
    (tmp_path / "day=2026-01-02" / "events-000000000041-000000000090.parquet").write_bytes(b"")
    (tmp_path / "day=2026-01-02" / ".tmp-events-000000000091-000000000100.parquet").write_bytes(b"")
    assert archived_through(tmp_path) == 90
    assert remove_partial(tmp_path) == 1
    assert archived_through(tmp_path) == 90


def test_one_connection_writes_every_file_whole(tmp_path):
    """An archiver keeps one DuckDB connection for all its files: each is whole and its own."""
    e = ev.TaskStarted(event_id="s", occurred_at=T0, graph_id="g", task_id="A", node_id="n1", attempt=1)
    from schemas.codec import encode

    con = archive_connection()
    try:
        for first, day in ((1, "2026-01-01"), (41, "2026-01-01"), (91, "2026-01-02")):
            rows = [archive_row(s, "ev.task.g.A.TaskStarted", encode(e), T0) for s in range(first, first + 40)]
            write_parquet(tmp_path, day, rows, con)
    finally:
        con.close()
    assert sorted(f.name for f in tmp_path.glob("day=*/*.parquet")) == [
        "events-000000000001-000000000040.parquet",
        "events-000000000041-000000000080.parquet",
        "events-000000000091-000000000130.parquet",
    ]
    assert _counts(tmp_path) == (120, 120, 1, 130)


async def _observations(url: str, n: int, start: int = 0) -> int:
    nc = await nats.connect(url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        items: list[Append] = []
        for i in range(start, start + n):
            e = ev.NodeObserved(
                event_id=f"o{i}",
                occurred_at=datetime.now(UTC),
                node_id="n1",
                cpu_percent=1.0,
                memory_percent=2.0,
                load1=0.1,
                running_tasks=i % 3,
            )
            items.append(event_append(e))
        for i in range(0, len(items), 1000):
            await log.append_atomic(items[i : i + 1000])
        return await log.last_seq()
    finally:
        await nc.close()


def _counts(directory: Path) -> tuple:
    return run_query(directory, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events")[1][0]


async def test_killed_with_sigkill_several_times_the_archive_holds_each_event_exactly_once(nats_server, tmp_path):
    directory = tmp_path / "archive"
    env = {**os.environ, "NIYANTRA_ARCHIVE_DIR": str(directory), "NIYANTRA_NATS_URL": nats_server.url}
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "projector", "archive"]
    await _observations(nats_server.url, 3000)
    writer = asyncio.create_task(_observations(nats_server.url, 40_000, start=3000))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kills = 0
    try:
        for _ in range(3):
            before = archived_through(directory)
            await assert_eventually(lambda b=before: archived_through(directory) > b, timeout=30, message="progress")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = await writer
        await assert_eventually(lambda: archived_through(directory) == last, timeout=90, message="caught up")
    finally:
        proc.kill()
        proc.wait()
    assert kills == 3
    assert _counts(directory) == (last, last, 1, last)
    _, [(ids, distinct)] = run_query(directory, "SELECT count(event_id), count(DISTINCT event_id) FROM events")
    assert ids == distinct == last


async def test_delivery_held_at_the_high_water_loses_and_repeats_nothing(nats_server, tmp_path):
    """The loop takes what was delivered in bulk; at ``high_water`` untaken messages delivery waits."""
    last = await _observations(nats_server.url, 500)
    nc = await nats.connect(nats_server.url)
    try:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(Archiver(nc, tmp_path, max_wait=0.05, high_water=7).run(stop, ready.set))
        await asyncio.wait_for(ready.wait(), 30)
        stop.set()
        await task
    finally:
        await nc.close()
    assert _counts(tmp_path) == (last, last, 1, last)


async def test_query_views_over_a_real_run_and_bad_sql(nats_server, tmp_path):
    spec = layered_graph("arc", layers=2, width=3, command="true")
    await submit(nats_server.url, spec)
    async with system(nats_server.url, tmp_path / "work", agents=2, slots=2):
        from tests.integration.test_pipeline import _all_done

        await assert_eventually(lambda: _all_done(nats_server.url, "arc"), timeout=60, message="graph done")
    directory = tmp_path / "archive"
    nc = await nats.connect(nats_server.url)
    stop = asyncio.Event()
    ready = asyncio.Event()
    archiver = Archiver(nc, directory, max_wait=0.05)
    task = asyncio.create_task(archiver.run(stop, ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    stop.set()
    await task
    await nc.close()
    names, rows = run_query(directory, "SELECT graph, task, node, attempt, outcome, duration FROM tasks ORDER BY task")
    assert [r[1] for r in rows] == sorted(t.id for t in spec.tasks)
    assert all(r[4] == "success" and r[3] == 1 and r[2].startswith("node-") for r in rows)
    # the first decisions may come before the second agent registers: a decision has one or two
    # candidates, and the chosen node is always among them
    _, decisions = run_query(
        directory,
        "SELECT task, node, list_transform(candidates, lambda c: c.node_id), len(candidates) FROM decisions",
    )
    assert len(decisions) == 6
    assert all(1 <= d[3] <= 2 and d[1] in d[2] and set(d[2]) <= {"node-1", "node-2"} for d in decisions)
    _, nodes = run_query(directory, "SELECT node, slots, dispatched FROM nodes ORDER BY node")
    assert [(n[0], n[1]) for n in nodes] == [("node-1", 2), ("node-2", 2)] and sum(n[2] for n in nodes) == 6
    # query asks the instance over NATS (asyncio.run), so it runs off this test's event loop
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        ["query", "SELECT task, outcome FROM tasks", "--format", "json", "--archive-dir", str(directory)],
    )
    assert result.exit_code == 0 and len(json.loads(result.output)) == 6
    csv_out = await asyncio.to_thread(
        runner.invoke,
        app,
        ["query", "SELECT count(*) AS n FROM events", "--format", "csv", "--archive-dir", str(directory)],
    )
    assert csv_out.exit_code == 0 and csv_out.output.splitlines()[0] == "n"
    bad = await asyncio.to_thread(
        runner.invoke, app, ["query", "SELECT nope FROM tasks", "--archive-dir", str(directory)]
    )
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "nope" in bad.output


def test_query_on_an_empty_archive_has_the_views(tmp_path):
    names, rows = run_query(tmp_path / "none", "SELECT * FROM tasks")
    assert rows == [] and names[:4] == ["graph", "task", "node", "attempt"]

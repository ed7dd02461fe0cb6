"""Real tools' task and graph ids through a whole run: subjects, events, views, logs, archive, CLI."""

from __future__ import annotations

import asyncio
import html
import json

import nats
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.replay import read_messages
from orchestrator.graphs.validation import GraphSpec
from orchestrator.replay.check import check
from projections.archive.projector import Archiver
from projections.archive.query import run_query
from schemas.ids import token
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.harness import submit, system
from tests.integration.test_pipeline import _all_done, _status

runner = CliRunner()

GRAPH = "nf-core/rnaseq:3.14 run.1"
NEXTFLOW = "NFCORE_RNASEQ.PREPARE_GENOME.GUNZIP_GTF_00000001"
BAZEL = "//pkg/sub:target"
MAKE = "src/a.o"
NINJA = "lib/lib z.a"
UNICODE = "日本語 タスク"
DOTTED, UNDERSCORED = "a.b", "a_b"  # one token each: a replacement of '.' by '_' would merge them
LONG = "x" * 256
CHAIN = [NEXTFLOW, BAZEL, MAKE, NINJA, UNICODE, DOTTED, UNDERSCORED, LONG]


def _spec() -> GraphSpec:
    tasks = [
        TaskSpec(id=t, command='printf "%s\\n" "$NIYANTRA_TASK_ID"', depends_on=(CHAIN[i - 1],) if i else ())
        for i, t in enumerate(CHAIN)
    ]
    return GraphSpec(id=GRAPH, title="real ids", tasks=tuple(tasks))


async def _cli(url: str, *args: str) -> str:
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--nats-url", url])
    assert result.exit_code == 0, (args, result.output)
    return result.output


async def _archive(url: str, directory) -> None:
    nc = await nats.connect(url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(Archiver(nc, directory, max_wait=0.05).run(stop, ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    stop.set()
    await task
    await nc.close()


async def test_ids_with_dots_slashes_colons_spaces_and_unicode_run_and_read_back_as_written(nats_server, tmp_path):
    url = nats_server.url
    await submit(url, _spec())
    async with system(url, tmp_path / "work", agents=2, slots=2):
        await assert_eventually(lambda: _all_done(url, GRAPH), timeout=90, message="graph done")

    status = await _status(url, GRAPH)
    assert {(t["graph"], t["id"], t["state"]) for t in status.tasks} == {(GRAPH, t, "succeeded") for t in CHAIN}

    subjects = {m.subject for m in await read_messages(url)}
    assert f"ev.task.{token(GRAPH)}.{token(DOTTED)}.TaskCompleted" in {s.rsplit(".", 1)[0] for s in subjects}
    assert token(DOTTED) != token(UNDERSCORED)

    listed = json.loads(await _cli(url, "status", "--json"))
    assert {t["id"] for t in listed["tasks"]} == set(CHAIN)

    explained = json.loads(await _cli(url, "explain", MAKE, "--json"))  # a slash, but no graph is called "src"
    assert (explained["graph"], explained["task"]) == (GRAPH, MAKE)
    assert explained["decisions"] and explained["decisions"][0]["candidates"]
    assert json.loads(await _cli(url, "explain", f"{GRAPH}/{NINJA}", "--json"))["task"] == NINJA
    assert json.loads(await _cli(url, "why", UNICODE, "--json"))["task"] == UNICODE

    for task_id in (NEXTFLOW, BAZEL, NINJA, LONG):
        out = await _cli(url, "logs", task_id, "--graph", GRAPH, "--json")
        assert json.loads(out)["output"] == task_id + "\n"  # the agent gave the task its own id

    events = await _cli(url, "events", "--task", BAZEL, "--json")
    rows = [json.loads(line) for line in events.splitlines() if line.strip()]
    assert rows and {r["event"]["task_id"] for r in rows} == {BAZEL}

    directory = tmp_path / "archive"
    await _archive(url, directory)
    _, rows = run_query(directory, "SELECT graph, task, outcome FROM tasks")
    assert sorted(rows) == sorted((GRAPH, t, "success") for t in CHAIN)

    svg = tmp_path / "run.svg"
    await _cli(url, "gantt", GRAPH, "--out", str(svg))
    text = svg.read_text()
    assert all(html.escape(t, quote=False) in text for t in (NINJA, BAZEL, UNICODE))

    replayed = check(await read_messages(url))
    assert replayed["decisions"] == len(CHAIN) and replayed["mismatches"] == []


async def test_a_task_reference_that_two_graphs_could_mean_is_refused_naming_both(nats_server, tmp_path):
    url = nats_server.url
    await submit(url, GraphSpec(id="src", title="", tasks=(TaskSpec(id="a.o", command="true"),)))
    await submit(url, GraphSpec(id="g", title="", tasks=(TaskSpec(id="src/a.o", command="true"),)))
    async with system(url, tmp_path / "work", agents=1, slots=2):
        await assert_eventually(lambda: _all_done(url, "g"), timeout=60, message="graph g done")
        await assert_eventually(lambda: _all_done(url, "src"), timeout=60, message="graph src done")
    result = await asyncio.to_thread(runner.invoke, app, ["explain", "src/a.o", "--nats-url", url])
    assert result.exit_code != 0
    assert "'src/a.o' could be 'src/a.o' in graph 'g', 'a.o' in graph 'src'" in result.output
    assert json.loads(await _cli(url, "explain", "src/a.o", "--graph", "g", "--json"))["graph"] == "g"

"""Submitting graphs: every kind of bad input is refused precisely and writes nothing; every
WfCommons instance validates with the file's task count and submits; big graphs are one write.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.writeside.eventlog import EventLog
from tests.conftest import run_nats

runner = CliRunner()
WORKLOADS = Path(__file__).resolve().parents[2] / "examples" / "workloads" / "wfcommons"


async def _last_seq(url: str) -> int:
    nc = await nats.connect(url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        return await log.last_seq()
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    s = run_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield s
    finally:
        s.stop()


def graph(*tasks: str, head: str = 'id = "g"') -> str:
    return f"[graph]\n{head}\n" + "".join(f"[[tasks]]\n{t}\n" for t in tasks)


OK = 'id = "A"\ncommand = "true"'
BAD_INPUT = {
    "cycle": (
        graph('id = "A"\ncommand = "x"\ndepends_on = ["B"]', 'id = "B"\ncommand = "x"\ndepends_on = ["A"]'),
        [],
        "task 'A': field 'depends_on': forms a cycle: A -> B -> A",
    ),
    "unknown dependency": (
        graph('id = "A"\ncommand = "x"\ndepends_on = ["T-404"]'),
        [],
        "task 'A': field 'depends_on': names unknown task 'T-404'",
    ),
    "duplicate id": (graph(OK, OK), [], "task 'A': field 'id': duplicates an earlier task"),
    "control character in id": (graph('id = "build\\tall"\ncommand = "x"'), [], "field 'id': contains the control character"),
    "missing command": (graph('id = "A"'), [], "task 'A': field 'command': is missing"),
    "wrong type": (
        graph(OK + '\ntier = "2"'),
        [],
        "task 'A': field 'tier': must be an integer from 1 to 3, got string",
    ),
    "negative duration": (graph(OK + "\nestimate = -30"), [], "task 'A': field 'estimate': -30 is negative"),
    "unparseable duration": (
        graph(OK + '\ntimeout = "soon"'),
        [],
        "task 'A': field 'timeout': 'soon' is not a duration",
    ),
    "tier out of range": (graph(OK + "\ntier = 4"), [], "task 'A': field 'tier': must be an integer from 1 to 3"),
    "tier 2 without preflight": (graph(OK + "\ntier = 2"), [], "task 'A': field 'preflight': is required for a tier 2"),
    "unknown key": (graph(OK + '\ndepend_on = ["B"]'), [], "task 'A': field 'depend_on': unknown key; did you mean"),
    "unparseable file": ('[graph]\nid = "g"\n[[tasks]]\nid = "A"\ncommand = \n', [], ":5:11: not valid TOML"),
    "over the size limit": (graph(OK), ["--max-bytes", "20"], "over the limit of 20 bytes (--max-bytes)"),
    "over the task limit": (
        graph(OK, 'id = "B"\ncommand = "x"'),
        ["--max-tasks", "1"],
        "2 tasks is over the limit of 1",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_INPUT))
def test_bad_input_exits_2_names_file_task_and_field_and_writes_nothing(server, tmp_path, kind):
    text, options, message = BAD_INPUT[kind]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = runner.invoke(app, ["submit", str(path), "--nats-url", server.url, *options])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert message in output and str(path) in output, result.output
    assert "nothing was written" in output
    assert asyncio.run(_last_seq(server.url)) == 0
    offline = runner.invoke(app, ["validate", str(path), "--json", *options])
    assert offline.exit_code == 2
    data = json.loads(offline.output)
    assert data["ok"] is False and any(message in p["text"] for p in data["problems"]), data


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        graph('id = "A"\ncommand = "x"\ndepends_on = ["Z"]', 'id = "B"\ntier = 9', 'id = "a\\u0007b"\ncommand = "x"')
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, result.output  # unknown dep, B's command, B's tier, the bell in an id
    assert "4 problem(s)" in result.output


def test_validate_prints_counts_depth_and_critical_path(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        graph('id = "A"\ncommand = "x"\nestimate = "1m"', 'id = "B"\ncommand = "x"\nestimate = 30\ndepends_on = ["A"]')
    )
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {k: data[k] for k in ("ok", "tasks", "edges", "depth", "critical_path_s", "problems")} == {
        "ok": True,
        "tasks": 2,
        "edges": 1,
        "depth": 2,
        "critical_path_s": 90.0,
        "problems": [],
    }
    text = runner.invoke(app, ["validate", str(path)])
    assert text.exit_code == 0 and "tasks 2 | edges 1 | depth 2" in text.output and "critical path 1m30s" in text.output


def _reference_counts() -> dict[str, int]:
    with (WORKLOADS / "reference.csv").open() as f:
        return {row["instance"]: int(row["tasks"]) for row in csv.DictReader(f)}


# The WfCommons instances ship in the repository (examples/workloads, copied from the project's shared workloads).
@pytest.mark.parametrize("instance", sorted(_reference_counts()) if WORKLOADS.exists() else ["<no examples/workloads>"])
def test_every_wfcommons_instance_validates_with_its_task_count_and_submits(server, instance):
    path = WORKLOADS / instance
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    raw = json.loads(__import__("gzip").decompress(path.read_bytes()))
    assert data["tasks"] == len(raw["workflow"]["specification"]["tasks"]) == _reference_counts()[instance]
    before = asyncio.run(_last_seq(server.url))
    submitted = runner.invoke(app, ["submit", str(path), "--nats-url", server.url, "--wf-scale", "0.001"])
    assert submitted.exit_code == 0, submitted.output
    assert f"{data['tasks']} tasks" in submitted.output
    assert asyncio.run(_last_seq(server.url)) > before


def test_a_nextflow_recording_with_dotted_ids_validates_simulates_and_submits_under_its_own_ids(server):
    path = WORKLOADS.parent / "nfcore-rnaseq-mini.json"
    raw = json.loads(path.read_text())
    ids = {t["id"] for t in raw["workflow"]["specification"]["tasks"]}
    assert "NFCORE_RNASEQ.PREPARE_GENOME.GUNZIP_GTF_00000001" in ids
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tasks"] == len(ids)
    simulated = runner.invoke(app, ["simulate", str(path), "--speeds", "2,1,1", "--json"])
    assert simulated.exit_code == 0, simulated.output
    assert json.loads(simulated.output)["decisions"] == len(ids)
    submitted = runner.invoke(app, ["submit", str(path), "--nats-url", server.url])
    assert submitted.exit_code == 0, submitted.output
    assert "submitted graph nf-core/rnaseq 3.14.0 (test profile)" in " ".join(submitted.output.split())


def test_wfcommons_template_problem_is_reported(tmp_path):
    assert WORKLOADS.exists(), f"{WORKLOADS} is missing: the WfCommons instances ship with the repository"
    path = sorted(WORKLOADS.glob("*.json.gz"))[0]
    result = runner.invoke(app, ["validate", str(path), "--wf-command", "run {nope}"])
    assert result.exit_code == 2 and "command_template" in result.output and "{seconds}" in result.output


def test_a_graph_bigger_than_one_message_is_written_in_parts_atomically(server, tmp_path):
    from orchestrator.graphs.submission import GraphAssembly

    n = 6000
    lines = ['[graph]\nid = "big"']
    for i in range(n):
        dep = f'\ndepends_on = ["T{i - 1}"]' if i else ""
        lines.append(f'[[tasks]]\nid = "T{i}"\ncommand = "echo {"x" * 150} {i}"{dep}')
    path = tmp_path / "big.toml"
    path.write_text("\n".join(lines))
    before = asyncio.run(_last_seq(server.url))
    result = runner.invoke(app, ["submit", str(path), "--nats-url", server.url])
    assert result.exit_code == 0, result.output

    async def read() -> list:
        nc = await nats.connect(server.url)
        try:
            return await EventLog(nc).read_events("ev.graph.big.>")
        finally:
            await nc.close()

    events = asyncio.run(read())
    assert len(events) > 1 and events[0][0] == before + 1
    assembly = GraphAssembly()
    whole = [assembly.add(e) for _, e in events][-1]
    assert whole is not None and [t.id for t in whole.tasks] == [f"T{i}" for i in range(n)]


def test_a_graph_with_a_source_records_its_manifest_and_stays_idempotent(server, tmp_path):
    import hashlib

    from orchestrator.graphs.submission import GraphAssembly

    (tmp_path / "repo/lib").mkdir(parents=True)
    (tmp_path / "repo/lib/a b.c").write_text("int a;")
    (tmp_path / "repo/build.sh").write_text("cc -c 'src/lib/a b.c'")
    path = tmp_path / "g.toml"
    path.write_text(
        '[graph]\nid = "with-source"\nsource = { dir = "repo", at = "src" }\n'
        '[[tasks]]\nid = "cc"\ncommand = "bash src/build.sh"\ninputs = ["src/lib/*.c", "src/build.sh"]\n'
        'outputs = ["a b.o"]\n'
    )
    first = runner.invoke(app, ["submit", str(path), "--nats-url", server.url])
    assert first.exit_code == 0 and "submitted graph with-source" in first.output, first.output
    again = runner.invoke(app, ["submit", str(path), "--nats-url", server.url])
    assert again.exit_code == 0 and "already submitted with the same content" in again.output, again.output

    async def read() -> list:
        nc = await nats.connect(server.url)
        try:
            return await EventLog(nc).read_events("ev.graph.with-source.>")
        finally:
            await nc.close()

    events = asyncio.run(read())
    whole = [GraphAssembly().add(e) for _, e in events][0]
    assert len(events) == 1 and whole is not None and len(whole.source_tree) == 64
    assert [(f.path, f.digest) for f in whole.source_files] == [
        ("src/build.sh", hashlib.sha256(b"cc -c 'src/lib/a b.c'").hexdigest()),
        ("src/lib/a b.c", hashlib.sha256(b"int a;").hexdigest()),
    ]
    assert whole.tasks[0].inputs == ("src/lib/*.c", "src/build.sh") and whole.tasks[0].outputs == ("a b.o",)
    (tmp_path / "repo/lib/a b.c").write_text("int a = 1;")  # the same file over a changed tree: new content
    changed = runner.invoke(app, ["submit", str(path), "--nats-url", server.url])
    assert changed.exit_code == 2 and len(asyncio.run(read())) == 1, changed.output

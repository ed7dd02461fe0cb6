"""The Python API builds, validates and submits graphs exactly like files."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.errors import GraphFileError
from orchestrator.writeside.api import Graph


def nightly() -> Graph:
    g = Graph("nightly", title="Nightly", defaults={"timeout": "10m", "type": "test"})
    deps = g.task("deps", "make deps", estimate="30s", type="deps")
    for shard in range(3):
        g.task(f"test-{shard}", f"make test SHARD={shard}", depends_on=[deps])
    return g


def test_build_applies_defaults_and_keeps_order():
    spec = nightly().build()
    assert [t.id for t in spec.tasks] == ["deps", "test-0", "test-1", "test-2"]
    assert spec.tasks[1].depends_on == ("deps",) and spec.tasks[1].timeout_s == 600.0
    assert (spec.tasks[0].type, spec.tasks[1].type) == ("deps", "test")


def test_a_broken_graph_in_code_gets_the_files_messages():
    g = Graph("g")
    g.task("A", "x", depends_on=["B"])
    g.task("B", "x", depends_on=["A"], tier=7)
    with pytest.raises(GraphFileError) as info:
        g.build()
    texts = [str(p) for p in info.value.problems]
    assert "<python graph g>: task 'B': field 'tier': must be an integer from 1 to 3, got integer 7" in texts
    assert any("forms a cycle: A -> B -> A" in t for t in texts)


def test_submit_is_atomic_and_idempotent(nats_server):
    first = nightly().submit(nats_server.url)
    assert first.created and first.seq == 1
    assert not nightly().submit(nats_server.url).created
    changed = nightly()
    changed.task("extra", "true")
    with pytest.raises(GraphFileError, match="already exists with different content"):
        changed.submit(nats_server.url)


def test_saved_graph_is_a_file_the_cli_validates(tmp_path):
    path = nightly().save(tmp_path / "nightly.json")
    result = CliRunner().invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert '"tasks": 4' in result.output and '"depth": 2' in result.output

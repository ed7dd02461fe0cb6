"""The read commands find the archive of the instance they reach (issue 17, bullet 3).

A real instance (`niyantra up --data-dir` in a temp folder, real agents); the commands run as a
user would, as processes in another folder, told only the instance's NATS URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, up

pytestmark = pytest.mark.timeout(240)
NIYANTRA = str(Path(sys.executable).parent / "niyantra")
GRAPH = """
[graph]
id = "arch"
[[tasks]]
id = "a"
command = "true"
[[tasks]]
id = "b.o"
command = "true"
depends_on = ["a"]
[[tasks]]
id = "c"
command = "true"
depends_on = ["a"]
"""


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NIYANTRA, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env={"PATH": "", **env})


@pytest.fixture
def instance(tmp_path):
    data = tmp_path / "inst"
    m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=2))
    try:
        yield m.url, data
    finally:
        down(data)


def test_query_and_metrics_read_the_instance_archive_without_being_told(instance, tmp_path):
    url, data = instance
    home = tmp_path / "elsewhere"  # no .niyantra here: the old default would find nothing
    home.mkdir()
    (home / "g.toml").write_text(GRAPH)
    assert run(home, "submit", "g.toml", NIYANTRA_NATS_URL=url).returncode == 0
    assert run(home, "wait", "--graph", "arch", "--timeout", "120", NIYANTRA_NATS_URL=url).returncode == 0

    # Right after the run: the query waits for the archive to hold it, so every task is there.
    sql = "SELECT task, outcome FROM tasks WHERE graph = 'arch' ORDER BY task"
    q = run(home, "query", sql, "--format", "json", NIYANTRA_NATS_URL=url)
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout) == [{"task": t, "outcome": "success"} for t in ("a", "b.o", "c")]

    m = run(home, "metrics", "--json", NIYANTRA_NATS_URL=url)
    assert m.returncode == 0, m.stderr
    figures = json.loads(m.stdout)
    assert None not in figures.values()
    assert figures["graphs_completed"] == 1 and figures["first_attempt_success_rate"] == 1.0
    assert figures["decisions"] == 3 and figures["graph_depth_max"] == 2

    table = run(home, "metrics", NIYANTRA_NATS_URL=url)
    assert table.returncode == 0 and str(data / "archive") in table.stdout.replace("\n", "")
    assert "null" not in table.stdout and "None" not in table.stdout

    # One setting names the instance too (what `up` and `down` read): same rows, no NATS needed.
    by_dir = run(home, "query", sql, "--format", "json", NIYANTRA_DATA_DIR=str(data))
    assert by_dir.returncode == 0 and json.loads(by_dir.stdout) == json.loads(q.stdout)


def test_an_empty_archive_beside_a_full_stream_is_one_line_naming_the_folder(instance, tmp_path):
    url, _ = instance
    empty = tmp_path / "empty"
    for args in (["query", "SELECT count(*) FROM tasks"], ["metrics"], ["metrics", "--json"]):
        r = run(tmp_path, *args, "--archive-dir", str(empty), NIYANTRA_NATS_URL=url)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stdout == ""  # no table of zeros, no nulls
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(empty) in lines[0] and "--archive-dir" in lines[0], r.stderr
        assert f"stream at {url}" in lines[0]


def test_no_archive_and_no_instance_is_one_line_and_exit_2(tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    r = run(tmp_path, "metrics", NIYANTRA_NATS_URL=url)
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and ".niyantra/archive" in line and url in line and "--data-dir" in line


def test_a_fresh_instance_says_no_data_yet(nats_server, tmp_path):
    r = run(tmp_path, "metrics", NIYANTRA_NATS_URL=nats_server.url)
    assert r.returncode == 0 and r.stdout.startswith("no data yet"), (r.stdout, r.stderr)
    assert run(tmp_path, "metrics", "--json", NIYANTRA_NATS_URL=nats_server.url).stdout.strip() == "{}"
    q = run(tmp_path, "query", "SELECT count(*) AS n FROM tasks", "--format", "csv", NIYANTRA_NATS_URL=nats_server.url)
    assert q.returncode == 0 and q.stdout.split() == ["n", "0"]

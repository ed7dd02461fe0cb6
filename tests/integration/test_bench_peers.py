"""scripts/bench's throughput and peers parts, at a small size: niyantra (`up`, every part a
process) and DBOS (installed by peers/run.py from the pyproject extra ``bench-dbos`` into
.venv-bench/dbos, as scripts/bench does) run both workloads, and the suite's summary sets them
side by side. The heavy peers (Prefect, Celery with Redis, Airflow) stay in scripts/bench."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)
BENCH = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks"
_spec = importlib.util.spec_from_file_location("bench_suite_quick", BENCH / "suite.py")
suite = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(suite)  # type: ignore[union-attr]


def run_json(*args: str) -> dict:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_niyantra_and_a_durable_peer_run_both_workloads_and_are_compared():
    ours = run_json(str(BENCH / "throughput.py"), "--only", "niyantra", "--scale", "0.01", "--agents", "1")
    peers = run_json(str(BENCH / "peers" / "run.py"), "--peers", "dbos", "--scale", "0.01", "--timeout", "600")
    dbos = peers["peers"]["dbos"]
    assert isinstance(dbos, dict), dbos  # a string says why DBOS could not run
    for name in ("independent", "layered"):
        assert ours["niyantra"][name]["counts"]["succeeded"] == 200
        assert dbos[name]["tasks"] == 200 and dbos[name]["tasks_per_s"] > 0
        assert dbos[name]["stored_per_task"]["sqlite_rows"] > 0  # DBOS records every workflow and step
        assert dbos[name]["cpu_ms_per_task"]["total"] > 0
        assert ours["niyantra"][name]["stored_bytes_per_task"]["EVENTS"] > 0
    assert dbos["versions"]["dbos"]
    assert "load_at_start" in peers and "noisy" in peers["notes"]
    measures = {r["measure"]: r for r in suite.summarize({"throughput": ours, "peers": peers})}
    row = measures["throughput layered, niyantra / best durable peer"]
    assert row["met"] in (True, False) and "dbos" in row["measured"]

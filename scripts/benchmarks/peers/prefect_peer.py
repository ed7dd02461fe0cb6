"""Prefect 3 with its ephemeral API server (the subprocess Prefect starts when no API URL is set) on
SQLite (Prefect's own SQLite settings: WAL, ``synchronous=NORMAL``, which Prefect sets itself).

Each workload is one flow; each task is a ``@task`` submitted to the flow's default task runner
(threads) with ``wait_for=`` its dependencies' futures (Prefect's idiom for a DAG), then waited for.
A task run's states reach the database through Prefect's event pipeline after the task has run,
so the clock stops when the database holds every task run as COMPLETED (``flow_s`` is when the
flow returned). Stored: the SQLite file's bytes (with its WAL) and its rows over every table.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TreeMeter, arguments, emit, guarded, measured, say, sqlite_stats


def completed(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute("select count(*) from task_run where state_type = 'COMPLETED'").fetchone()[0])
    finally:
        con.close()


def wait_recorded(db: Path, target: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while (n := completed(db)) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the database holds {n} of {target} task runs as COMPLETED after {timeout:.0f} s")
        time.sleep(0.1)


def main() -> None:
    args = arguments(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        db = Path(tmp) / "prefect.db"
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.update(
            PREFECT_HOME=tmp,
            PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{db}",
            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
            PREFECT_LOGGING_LEVEL="WARNING",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
        )
        import prefect
        from prefect import flow, task
        from prefect.futures import wait

        @task
        def noop(*_deps: Any) -> None:
            return None

        @flow
        def graph(tasks: dict[str, list[str]]) -> int:
            futures: dict[str, Any] = {}
            for tid, deps in tasks.items():
                futures[tid] = noop.with_options(task_run_name=tid).submit(wait_for=[futures[d] for d in deps])
            wait(list(futures.values()))
            return len(futures)

        out: dict[str, Any] = {
            "peer": "prefect",
            "versions": {"prefect": prefect.__version__},
            "setup": {
                "api": "ephemeral server (subprocess), SQLite (WAL, synchronous=NORMAL: Prefect's own)",
                "task_runner": "ThreadPoolTaskRunner (the default)",
            },
        }
        graph({f"warm-{i}": [] for i in range(10)})
        wait_recorded(db, 10)
        meter = TreeMeter()

        def run(tasks: dict[str, list[str]]) -> str:
            base, t0 = completed(db), time.perf_counter()
            assert graph(tasks) == len(tasks)
            flow_s = time.perf_counter() - t0
            wait_recorded(db, base + len(tasks))
            return f"flow returned after {flow_s:.2f} s; every task run COMPLETED in the database after that"

        for name, tasks in args.loads.items():
            say(f"prefect {name}: {len(tasks)} tasks")
            out[name] = guarded(name, lambda t=tasks, n=name: measured(n, t, run, lambda: sqlite_stats(db), meter))
    emit(out)


if __name__ == "__main__":
    main()

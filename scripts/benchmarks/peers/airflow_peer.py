"""Airflow 3 on SQLite (its metadata database, ``airflow db migrate`` in a temp AIRFLOW_HOME).

Each workload is a DAG (airflow_dag.py) run by ``dag.test()``, Airflow's own way to run a DAG from
a script: the DAG is parsed and serialized into the metadata database, a DAG run is created and
each task instance runs in this process, its states written to the database. The scheduler,
DAG processor, API server and an executor (Airflow's production setup) are not started: that is
four long-lived services for one machine. Airflow runs a no-op task in about a third of a second
here, so the workloads are cut to ``--max-tasks`` (300) and the figures are per task of what ran
(``notes`` says so). Stored: the SQLite file's bytes and its rows over every table.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import TreeMeter, arguments, emit, guarded, measured, say, sqlite_stats

HERE = Path(__file__).resolve().parent
MAX_TASKS = 300


def cut(tasks: dict[str, list[str]], limit: int) -> dict[str, list[str]]:
    """The first ``limit`` tasks (a topological prefix: every dependency comes first)."""
    return dict(list(tasks.items())[:limit])


def setup(home: Path, loads: dict[str, dict[str, list[str]]]) -> Any:
    (home / "dags").mkdir()
    shutil.copy(HERE / "airflow_dag.py", home / "dags" / "bench_dag.py")
    spec = {"independent": len(loads.get("independent", {})), "layered": loads.get("layered", {})}
    (home / "workload.json").write_text(json.dumps(spec))
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__MAX_MAP_LENGTH="100000",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    from airflow.utils import db

    db.initdb()
    found = importlib.util.spec_from_file_location("bench_dag", home / "dags" / "bench_dag.py")
    module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def main() -> None:
    args = arguments(__doc__)
    full = {name: len(tasks) for name, tasks in args.loads.items()}
    loads = {name: cut(tasks, MAX_TASKS) for name, tasks in args.loads.items()}
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp:
        module = setup(Path(tmp), loads)  # first: Airflow reads its settings when imported
        import airflow

        logging.getLogger("airflow").setLevel(logging.WARNING)
        out: dict[str, Any] = {
            "peer": "airflow",
            "versions": {"apache-airflow": airflow.__version__},
            "setup": {"metadata_db": "sqlite", "runner": "dag.test() (in-process; no scheduler or executor)"},
        }
        db, meter = Path(tmp) / "airflow.db", TreeMeter()
        for name, tasks in loads.items():
            dag = getattr(module, name)

            def run(_tasks: dict[str, list[str]], dag: Any = dag, name: str = name) -> str:
                state = dag.test().state
                if str(state) != "success":
                    raise RuntimeError(f"the DAG run ended {state}")
                return f"ran {len(_tasks)} of the workload's {full[name]} tasks (Airflow's pace: see the doc)"

            say(f"airflow {name}: {len(tasks)} of {full[name]} tasks")
            out[name] = guarded(name, lambda t=tasks, n=name, r=run: measured(n, t, r, lambda: sqlite_stats(db), meter))
    emit(out)


if __name__ == "__main__":
    main()

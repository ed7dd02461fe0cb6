"""The Airflow peer's DAG file (copied by airflow_peer.py into its temp dags folder, where Airflow 3's
``dag.test()`` must find it): one DAG per workload, read from ``$AIRFLOW_HOME/workload.json``.
``bench_independent`` is one ``@task`` mapped over the task count (Airflow's idiom for many alike
tasks); ``bench_layered`` is one ``@task`` per task with ``>>`` from each of its dependencies."""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.sdk import DAG, task

with open(os.path.join(os.environ["AIRFLOW_HOME"], "workload.json")) as f:
    SPEC = json.load(f)


@task
def noop(*_args: Any, **_kwargs: Any) -> None:
    return None


with DAG("bench_independent", schedule=None, max_active_tasks=64) as independent:
    noop.expand(i=list(range(SPEC["independent"])))

with DAG("bench_layered", schedule=None, max_active_tasks=64) as layered:
    ops: dict[str, Any] = {}
    for tid, deps in SPEC["layered"].items():
        ops[tid] = noop.override(task_id=tid)()
        for d in deps:
            ops[d] >> ops[tid]

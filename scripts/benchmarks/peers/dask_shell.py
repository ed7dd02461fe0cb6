"""Dask distributed with each task running the shell command niyantra's tasks run (`bash -c true`).

The same setup as throughput.py's Dask run (``LocalCluster(n_workers=2)``, worker processes,
``worker-saturation: inf``, the whole workload one graph through ``client.get``), but each task is
``subprocess.run(["bash", "-c", "true"])``, so the task's own cost is the same on both sides.
Dask persists nothing: its stored bytes are 0. One JSON document on stdout.
"""

from __future__ import annotations

import subprocess
from typing import Any

from common import SHELL, TreeMeter, arguments, emit, guarded, measured, say


def shell(*_deps: Any) -> int:
    return subprocess.run(SHELL, check=True).returncode


def main() -> None:
    args = arguments(__doc__)
    import dask
    import distributed
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.worker-saturation": float("inf")})
    out: dict[str, Any] = {"peer": "dask_shell", "versions": {"distributed": distributed.__version__}}
    with LocalCluster(n_workers=2, dashboard_address=None) as cluster, Client(cluster) as client:
        workers = cluster.scheduler_info["workers"].values()
        out["setup"] = {
            "n_workers": 2,
            "threads_per_worker": [w.get("nthreads") for w in workers],
            "worker_saturation": "inf",
            "api": "client.get(graph), each task subprocess.run(['bash', '-c', 'true'])",
            "durable": "no: Dask keeps its state in memory only",
        }
        client.get({"warm": (shell,)}, "warm")
        meter = TreeMeter()

        def run(tasks: dict[str, list[str]]) -> None:
            client.get({tid: (shell, *deps) for tid, deps in tasks.items()}, list(tasks), sync=True)

        for name, tasks in args.loads.items():
            say(f"dask_shell {name}: {len(tasks)} tasks")
            out[name] = guarded(name, lambda t=tasks, n=name: measured(n, t, run, lambda: {"stored_bytes": 0}, meter))
    emit(out)


if __name__ == "__main__":
    main()

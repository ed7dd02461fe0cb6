"""What every peer runner shares: the two workloads, the process-tree CPU meter, the result shape.

A peer runner (one module per peer beside this one) runs in its own venv (``.venv-bench/<peer>``,
made by run.py from the pyproject extra ``bench-<peer>``), so this module needs only the standard
library and psutil, and imports nothing of niyantra.

The workloads are the ones scripts/benchmarks/throughput.py gives niyantra and Dask: ``independent``
(20,000 tasks without dependencies) and ``layered`` (100 layers x 100 tasks, each depending on 2
tasks of the layer before); ``--scale`` multiplies the task count and the number of layers.

CPU is counted over the runner's whole process tree (itself, every server and worker it started,
and the children they waited for, such as a task's shell), user + system, between the start and
the end of the measured run; a warm-up run before it keeps start-up out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

WIDTH = 100
SHELL = ["bash", "-c", "true"]  # the command a niyantra agent's task shell runs for the bench's `true`


def say(msg: str) -> None:
    print(f"[peer] {msg}", file=sys.stderr, flush=True)


def workloads(scale: float) -> dict[str, dict[str, list[str]]]:
    """Each workload as ``{task id: [dependency ids]}`` in a topological order (as throughput.py)."""
    n = max(1, round(20_000 * scale))
    independent: dict[str, list[str]] = {f"T-{i}": [] for i in range(n)}
    layers = max(2, round(100 * scale))
    layered: dict[str, list[str]] = {}
    for layer in range(layers):
        for k in range(WIDTH):
            deps = [] if layer == 0 else [f"L{layer - 1}-{k}", f"L{layer - 1}-{(k + 1) % WIDTH}"]
            layered[f"L{layer}-{k}"] = deps
    return {"independent": independent, "layered": layered}


def layers_of(tasks: dict[str, list[str]]) -> list[list[str]]:
    """The tasks grouped by depth (a task's layer is one more than its deepest dependency's)."""
    depth: dict[str, int] = {}
    for tid, deps in tasks.items():
        depth[tid] = 1 + max((depth[d] for d in deps), default=-1)
    out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for tid, d in depth.items():
        out[d].append(tid)
    return out


def _proc_label(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return "?"
    name = p.name()
    if name.startswith("python") and "-c" in cmd:
        return "python (multiprocessing child)" if "spawn_main" in " ".join(cmd) else "python -c"
    if name.startswith("python") and len(cmd) > 1:
        words = [w for w in cmd[1:] if not w.startswith("-")]
        script = Path(words[0]).name if words else "python"
        return f"python {script}"
    return name


class TreeMeter:
    """CPU seconds of a process tree, by process, so that two samples give the run's share."""

    def __init__(self, root: int | None = None) -> None:
        self.root = psutil.Process(root or os.getpid())
        self.labels: dict[int, str] = {}

    def sample(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for p in [self.root, *self.root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                if p.pid not in self.labels:
                    self.labels[p.pid] = _proc_label(p)
            except psutil.Error:
                continue
            out[p.pid] = t.user + t.system + t.children_user + t.children_system
        return out

    def per_task_ms(self, before: dict[int, float], after: dict[int, float], tasks: int) -> dict[str, float]:
        """Milliseconds per task by process label, and their ``total``."""
        by: dict[str, float] = {}
        for pid, cpu in after.items():
            label = self.labels.get(pid, "?")
            by[label] = by.get(label, 0.0) + cpu - before.get(pid, 0.0)
        out = {k: round(v * 1000 / max(tasks, 1), 3) for k, v in sorted(by.items())}
        out["total"] = round(sum(by.values()) * 1000 / max(tasks, 1), 3)
        return out


def measured(
    name: str,
    tasks: dict[str, list[str]],
    run: Callable[[dict[str, list[str]]], Any],
    stored: Callable[[], dict[str, float]],
    meter: TreeMeter,
) -> dict[str, Any]:
    """Run one workload, timed, with CPU and storage before/after; ``run`` may return notes."""
    s0, c0 = stored(), meter.sample()
    t0 = time.perf_counter()
    notes = run(tasks)
    elapsed = time.perf_counter() - t0
    c1, s1 = meter.sample(), stored()
    n = len(tasks)
    result: dict[str, Any] = {
        "tasks": n,
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(n / elapsed, 1),
        "cpu_ms_per_task": meter.per_task_ms(c0, c1, n),
        "stored_per_task": {k: round((s1.get(k, 0) - s0.get(k, 0)) / n, 2) for k in sorted(s1)},
    }
    if notes:
        result["notes"] = notes
    say(f"{name}: {result['tasks_per_s']} tasks/s ({elapsed:.2f} s), {result['cpu_ms_per_task']['total']} ms CPU/task")
    return result


def guarded(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | str:
    """A workload's figures, or what went wrong as a string (never a blank)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - reported in the JSON, the next workload goes on
        traceback.print_exc(file=sys.stderr)
        return f"{name} failed: {type(e).__name__}: {e}"


def arguments(doc: str | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the workloads' size (0.1: quick)")
    ap.add_argument("--workload", choices=["independent", "layered"], action="append", help="default: both")
    args = ap.parse_args()
    args.loads = {k: v for k, v in workloads(args.scale).items() if not args.workload or k in args.workload}
    return args


def emit(out: dict[str, Any]) -> None:
    """The runner's one JSON document on stdout."""
    out.setdefault("load_at_start", [round(x, 2) for x in os.getloadavg()])
    print(json.dumps(out, indent=2))


def sqlite_stats(path: Path) -> dict[str, float]:
    """Bytes of a SQLite database with its WAL and journal, and its rows over every table."""
    import sqlite3

    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    size = sum(f.stat().st_size for f in files if f.exists())
    rows = 0
    if path.exists():
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
            for t in names:
                rows += con.execute(f'select count(*) from "{t}"').fetchone()[0]
        finally:
            con.close()
    return {"sqlite_bytes": size, "sqlite_rows": rows}

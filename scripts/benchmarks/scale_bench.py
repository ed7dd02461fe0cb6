"""Scale: niyantra alone on one graph shape at several sizes, per-task overhead and its growth.

Each size is one fresh ``niyantra up --agents N --slots S`` run of throughput.py's
``run_niyantra`` (durable stream, ``sync_interval: always``, each task ``true``; clock from submit
to the readiness view saying every task is terminal; startup not counted). Shapes as in
throughput.py:

- ``layered`` (default): width 100, each task depending on 2 tasks of the layer before, so a size
  of N tasks is N / 100 layers;
- ``independent``: N tasks without dependencies.

Per size: wall seconds, tasks/s, wall ms per task, each process's peak RSS (VmHWM) and CPU seconds
(user + system of the process itself, read just before ``down``; the ``true`` commands the agents
run are not in it), their sum as CPU ms per task, the bench client's own CPU seconds (building the
graph, submitting, polling; not in the sum), and the load average before and after.

``growth``: for each consecutive pair of sizes n1 < n2, the ratio of per-task overhead
(wall ms and CPU ms) next to ``log(n2) / log(n1)``. Overhead a + b log n (a, b >= 0) grows by at
most that much between two sizes, so a ratio above it means growth faster than logarithmic
(with three noisy points on a shared machine: an indication, not a proof).

Output: one JSON document on stdout (progress on stderr). A size that fails (e.g. timeout) is
recorded with its error and its kept data dir (logs) and the series goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as T  # noqa: E402 - the benchmark whose parts this reuses


def shape(name: str, n: int) -> dict[str, list[str]]:
    """``n`` tasks of the named shape, built by throughput.workloads (``layered``: n / 100 layers)."""
    if name == "layered":
        if n % T.WIDTH or n < 2 * T.WIDTH:
            sys.exit(f"error: --sizes: a layered size must be a multiple of {T.WIDTH} and at least {2 * T.WIDTH}: {n}")
        tasks = T.workloads(n / T.WIDTH / 100)["layered"]
    else:
        tasks = T.workloads(n / 20_000)["independent"]
    assert len(tasks) == n, (name, n, len(tasks))
    return tasks


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def one_size(name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    tasks = shape(name, n)
    keep = tempfile.mkdtemp(prefix=f"niyantra-scale-{n}-") if args.keep_data else None
    load_before = loadavg()
    cpu0 = time.process_time()
    try:
        r = T.run_niyantra(f"{name}-{n}", tasks, args.agents, args.slots, args.timeout, keep_in=keep)
    except Exception as e:  # noqa: BLE001 - a failed size is a figure too; the series goes on
        T.say(f"{name} {n}: FAILED: {e!r}")
        return {"tasks": n, "error": repr(e), "data_dir": keep, "load_before": load_before, "load_after": loadavg()}
    cpu_total = sum(p["cpu_s"] for p in r["processes"].values())
    r.update(
        wall_ms_per_task=round(1000 * r["seconds"] / n, 3),
        cpu_ms_per_task=round(1000 * cpu_total / n, 3),
        cpu_s_all_processes=round(cpu_total, 2),
        bench_client_cpu_s=round(time.process_time() - cpu0, 2),
        load_before=load_before,
        load_after=loadavg(),
    )
    if keep:
        r["data_dir"] = keep
    return r


def growth(runs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    ok = sorted(n for n, r in runs.items() if "error" not in r)
    out = []
    for n1, n2 in zip(ok, ok[1:], strict=False):
        a, b = runs[n1], runs[n2]
        out.append(
            {
                "from": n1,
                "to": n2,
                "wall_ms_per_task_ratio": round(b["wall_ms_per_task"] / a["wall_ms_per_task"], 3),
                "cpu_ms_per_task_ratio": round(b["cpu_ms_per_task"] / a["cpu_ms_per_task"], 3),
                "decider_cpu_per_task_ratio": round(
                    (b["processes"]["decider"]["cpu_s"] / n2) / (a["processes"]["decider"]["cpu_s"] / n1), 3
                )
                if "decider" in a["processes"] and "decider" in b["processes"]
                else None,
                "log_bound": round(math.log(n2) / math.log(n1), 3),
                # the fixed costs (startup CPU, first and last round) cancel out in these two
                "wall_ms_per_added_task": round(1000 * (b["seconds"] - a["seconds"]) / (n2 - n1), 3),
                "cpu_ms_per_added_task": round(
                    1000 * (b["cpu_s_all_processes"] - a["cpu_s_all_processes"]) / (n2 - n1), 3
                ),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated task counts")
    ap.add_argument("--shape", choices=["layered", "independent"], default="layered")
    ap.add_argument("--agents", type=int, default=3, help="niyantra node agents")
    ap.add_argument("--slots", type=int, default=8, help="task slots per agent")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per size")
    ap.add_argument("--keep-data", action="store_true", help="keep each size's data dir (logs, stream) in /tmp")
    args = ap.parse_args()
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        sys.exit(f"error: --sizes: expected comma-separated integers, got {args.sizes!r}")
    for n in sizes:
        shape(args.shape, n)  # reject a bad size before any run
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=T.ROOT)
    dirty = subprocess.run(["git", "status", "--short", "-uno"], capture_output=True, text=True, cwd=T.ROOT)
    out: dict[str, Any] = {
        "shape": args.shape,
        "width": T.WIDTH if args.shape == "layered" else None,
        "machine": {
            "cpus": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        },
        "niyantra_setup": {"agents": args.agents, "slots": args.slots, "sync_interval": "always"},
        "commit": git.stdout.strip(),
        "uncommitted_files": dirty.stdout.split()[1::2],
        "runs": {},
    }
    runs: dict[int, dict[str, Any]] = {}
    for n in sizes:
        T.say(f"{args.shape} {n} tasks (load {loadavg()})")
        runs[n] = one_size(args.shape, n, args)
        print(json.dumps({str(n): runs[n]}), file=sys.stderr, flush=True)
    out["runs"] = {str(n): r for n, r in runs.items()}
    out["growth"] = growth(runs)
    out["decider_peak_rss_mib"] = {
        str(n): r.get("processes", {}).get("decider", {}).get("peak_rss_mib") for n, r in runs.items()
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

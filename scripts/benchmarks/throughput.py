"""End-to-end throughput of no-op tasks: niyantra (every part its own process) against Dask distributed.

Two workloads, run by both in the same invocation on the same machine:

- ``independent``: 20,000 tasks without dependencies;
- ``layered``: 100 layers x 100 tasks, each depending on 2 tasks of the layer before.

``--scale`` multiplies the task count (independent) and the number of layers (layered; the width
stays 100), so ``--scale 0.1`` is a quick run.

niyantra: a fresh `niyantra up --agents N --slots S --detach` per workload (own free port, own data
dir, the repository's nats.conf, i.e. a durable file stream with ``sync_interval: always``); each
task's command is ``true``. The clock starts before the graph is submitted through the Python API
and stops when the readiness view's graph totals say every task is terminal (the KV key is read
every 50 ms). Startup is not counted; submission is (its time is also reported alone).

Dask: `LocalCluster(n_workers=2)` (processes; threads per worker as Dask chooses for the cores)
with ``distributed.scheduler.worker-saturation: inf`` (Dask's own advice for many small
independent tasks); the whole workload is one task graph run by ``client.get`` (its best
idiomatic use for a known graph; one ``submit`` per task is slower). Dask persists nothing.

Output: one JSON document on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from common import WIDTH, workloads  # noqa: E402 - the workloads every peer runs (peers/common.py)

__all__ = ["WIDTH", "workloads"]


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- niyantra ---------------------------------------------------------------------------------


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, check=check, cwd=ROOT
    )


def process_figures(data_dir: Path) -> dict[str, dict[str, float]]:
    """Peak RSS (VmHWM, MiB) and CPU seconds (user + system, since start) of every process `up`
    started, read while they still run."""
    from orchestrator.runtime.supervisor import read_manifest

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, dict[str, float]] = {}
    m = read_manifest(data_dir)
    for p in m.processes if m else []:
        try:
            status = Path(f"/proc/{p.pid}/status").read_text().splitlines()
            stat = Path(f"/proc/{p.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
        out[p.name] = {
            "peak_rss_mib": round(hwm / 1024, 1),
            "cpu_s": round((int(stat[11]) + int(stat[12])) / tick, 2),
            # the exited children it waited for: an agent's task shells (setpriv, bash, the command)
            "children_cpu_s": round((int(stat[13]) + int(stat[14])) / tick, 2),
        }
    return out


def cpu_per_task(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], tasks: int
) -> dict[str, float]:
    """CPU milliseconds per task of each process between submit and the end (start-up excluded),
    and their ``total``: what the machine spends on one task, whatever the wall clock."""
    out = {
        name: round((fig["cpu_s"] - before.get(name, {}).get("cpu_s", 0.0)) * 1000 / max(tasks, 1), 3)
        for name, fig in sorted(after.items())
    }
    out["total"] = round(sum(out.values()), 3)
    children = sum(
        fig.get("children_cpu_s", 0.0) - before.get(name, {}).get("children_cpu_s", 0.0) for name, fig in after.items()
    )
    out["task_processes"] = round(children * 1000 / max(tasks, 1), 3)  # not in the total: the tasks' own shells
    out["total_with_task_processes"] = round(out["total"] + out["task_processes"], 3)  # as the peers count
    return out


async def stream_heads(url: str) -> dict[str, tuple[int, int]]:
    """Each JetStream stream's last sequence and bytes (the event log, the log store, every view bucket).
    The file streams (EVENTS, LOGS) fsync every message (``sync_interval: always``); the view
    buckets (``KV_*``) are memory storage, written but never fsynced."""
    import nats

    nc = await nats.connect(url)
    try:
        return {s.config.name: (int(s.state.last_seq), int(s.state.bytes)) for s in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


async def wait_done(url: str, graph_id: str, total: int, timeout: float) -> Any:
    """Poll the readiness view's totals of ``graph_id`` until every task is terminal."""
    import msgspec
    import nats

    from projections.readiness.fold import GraphView
    from schemas import subjects as S

    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(S.KV_READINESS)
        decoder = msgspec.json.Decoder(GraphView)
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            try:
                entry = await kv.get(S.graph_key(graph_id))
                g = decoder.decode(entry.value)
                if g.total == total and g.done:
                    return g
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    say(f"  {graph_id}: {dict(sorted(g.counts.items()))}")
            except Exception:  # noqa: BLE001 - the key appears once the projector saw the graph
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{graph_id} not done after {timeout:.0f} s")
    finally:
        await nc.close()


def run_niyantra(
    name: str, tasks: dict[str, list[str]], agents: int, slots: int, timeout: float, keep_in: str | None = None
) -> dict[str, Any]:
    """``keep_in``: an existing directory to hold the data dir (logs, stream), left there afterwards."""
    from orchestrator.runtime.ports import free_port
    from orchestrator.writeside.api import Graph

    with contextlib.nullcontext(keep_in) if keep_in else tempfile.TemporaryDirectory(prefix="niyantra-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        url = f"nats://127.0.0.1:{port}"
        say(f"niyantra {name}: up --agents {agents} --slots {slots} on port {port}")
        t_up = time.perf_counter()
        sizes = ("--agents", str(agents), "--slots", str(slots))
        cli("up", *sizes, "--detach", "--port", str(port), "--data-dir", str(data_dir))
        startup_s = time.perf_counter() - t_up
        try:
            graph_id = f"bench-{name}-{uuid.uuid4().hex[:8]}"
            g = Graph(graph_id, title=f"bench {name}")
            for tid, deps in tasks.items():
                g.task(tid, "true", depends_on=deps)
            before = process_figures(data_dir)  # start-up CPU, subtracted below
            stored_before = asyncio.run(stream_heads(url))
            t0 = time.perf_counter()
            g.submit(url)
            t_sub = time.perf_counter()
            say(f"niyantra {name}: submitted {len(tasks)} tasks in {t_sub - t0:.2f} s")
            view = asyncio.run(wait_done(url, graph_id, len(tasks), timeout))
            elapsed = time.perf_counter() - t0
            counts = dict(sorted(view.counts.items()))
            procs = process_figures(data_dir)
            stored_after = asyncio.run(stream_heads(url))
        finally:
            cli("down", "--data-dir", str(data_dir), check=False)
    result = {
        "tasks": len(tasks),
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(len(tasks) / elapsed, 1),
        "submit_s": round(t_sub - t0, 3),
        "startup_s": round(startup_s, 2),
        "counts": counts,
        "processes": procs,
        "cpu_ms_per_task": cpu_per_task(before, procs, len(tasks)),
        "stored_messages_per_task": {
            name: round((last - stored_before.get(name, (0, 0))[0]) / len(tasks), 2)
            for name, (last, _) in stored_after.items()
        },
        # the file streams only (the KV_* view buckets are memory storage, not durable)
        "stored_bytes_per_task": {
            name: round((size - stored_before.get(name, (0, 0))[1]) / len(tasks), 1)
            for name, (_, size) in stored_after.items()
            if not name.startswith("KV_")
        },
    }
    say(f"niyantra {name}: {result['tasks_per_s']} tasks/s ({elapsed:.2f} s)")
    return result


# --- Dask -------------------------------------------------------------------------------------


def noop(*_deps: Any) -> None:
    return None


def run_dask(client: Any, name: str, tasks: dict[str, list[str]]) -> dict[str, Any]:
    graph = {tid: (noop, *deps) for tid, deps in tasks.items()}
    keys = list(tasks)
    t0 = time.perf_counter()
    client.get(graph, keys, sync=True)
    elapsed = time.perf_counter() - t0
    result = {"tasks": len(tasks), "seconds": round(elapsed, 3), "tasks_per_s": round(len(tasks) / elapsed, 1)}
    say(f"dask {name}: {result['tasks_per_s']} tasks/s ({elapsed:.2f} s)")
    return result


def dask_available() -> str | None:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the workloads' size (0.1: a quick run)")
    ap.add_argument("--agents", type=int, default=3, help="niyantra node agents")
    ap.add_argument("--slots", type=int, default=8, help="task slots per agent")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    ap.add_argument("--only", choices=["niyantra", "dask"], help="run one side only")
    ap.add_argument("--workload", choices=["independent", "layered"], action="append", help="default: both")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per niyantra workload")
    args = ap.parse_args()
    if args.only != "niyantra" and (problem := dask_available()):
        sys.exit(f"error: Dask distributed is not installed ({problem}); install the extra: pip install -e '.[bench]'")
    loads = {k: v for k, v in workloads(args.scale).items() if not args.workload or k in args.workload}
    out: dict[str, Any] = {
        "scale": args.scale,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "niyantra_setup": {"agents": args.agents, "slots": args.slots, "sync_interval": "always"},
    }
    if args.only != "niyantra":
        import dask
        import distributed
        from distributed import Client, LocalCluster

        out["dask_setup"] = {
            "version": distributed.__version__,
            "n_workers": args.workers,
            "worker_saturation": "inf",
            "api": "client.get(graph)",
        }
        dask.config.set({"distributed.scheduler.worker-saturation": float("inf")})
        with LocalCluster(n_workers=args.workers, dashboard_address=None) as cluster, Client(cluster) as client:
            out["dask_setup"]["threads_per_worker"] = cluster.scheduler_info["workers"] and next(
                iter(cluster.scheduler_info["workers"].values())
            ).get("nthreads")
            client.get({"warm": (noop,)}, "warm")
            out["dask"] = {name: run_dask(client, name, tasks) for name, tasks in loads.items()}
    if args.only != "dask":
        out["niyantra"] = {
            name: run_niyantra(name, tasks, args.agents, args.slots, args.timeout) for name, tasks in loads.items()
        }
    if "dask" in out and "niyantra" in out:
        out["ratio_niyantra_over_dask"] = {
            name: round(out["niyantra"][name]["tasks_per_s"] / out["dask"][name]["tasks_per_s"], 3) for name in loads
        }
        out["cpu_budget_ms_per_task_for_2x_dask"] = {
            name: round((os.cpu_count() or 1) * 1000 / (2 * out["dask"][name]["tasks_per_s"]), 3) for name in loads
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

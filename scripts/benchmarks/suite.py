"""Every performance measure of niyantra in one run and one JSON document (`scripts/bench`).

Runs each benchmark as its own process, one after the other (they would disturb each other's
figures side by side on a small machine), keeps each one's whole JSON under ``parts``, and
sums them up in ``summary``: one row per measure with its goal, the figure measured and
whether the goal is met. The parts:

- ``throughput``: no-op tasks end to end, niyantra (`up`, every part a process, durable
  stream) against Dask distributed, same workloads, same run (throughput.py); also each
  niyantra process's peak RSS and CPU seconds;
- ``decision_latency``: view change to dispatch appended on a real system (`scripts/bench_loop`,
  10,000 tasks, 100 simulated nodes) at saturation (a task takes no time: every freed slot asks
  for work at once, so the figure includes queueing behind the system's throughput);
- ``decision_latency_paced``: the same with a bounded offered load: each task takes 0.5-1.5 s
  (1 s spread by 0.5, fixed per task), about 100 tasks a second offered on 100 nodes, as in a
  build whose steps take time;
- ``view_rebuild``: rebuilding the views from 1,000,000 events, and append-to-view latency
  (views_bench.py);
- ``archive``: DuckDB queries over 10,000,000 archived events and `replay --check` speed
  (archive_bench.py);
- ``makespan``: the decider on the simulator against HEFT over examples/workloads (makespan.py);
- ``locality``: the same with data transfer at 10MB/s against HEFT with communication costs
  (locality.py, `scripts/bench_locality`);
- ``cpu_floor``: the CPU per task the fixed choices cost with none of niyantra's logic: the
  event traffic alone, on a real server, each consumer its own process (cpu_floor.py);
- ``peers``: the durable orchestrators (Celery on Redis with ``appendfsync always``, DBOS and
  Prefect on SQLite, Airflow) and Dask running the same shell command as niyantra's tasks, on the
  throughput part's two workloads, each in its own venv (peers/run.py); the summary sets them
  beside niyantra's throughput figures of the same run.

``--quick`` runs each at a tenth of its size or less (minutes instead of a quarter hour; the
goals are stated for the full sizes). Options this script does not know go to throughput.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parents[1]
PARTS = (
    "throughput",
    "peers",
    "decision_latency",
    "decision_latency_paced",
    "view_rebuild",
    "archive",
    "makespan",
    "locality",
    "build",
    "cpu_floor",
)
DURABLE_PEERS = ("celery", "dbos", "prefect", "airflow")


def commands(quick: bool, throughput_args: list[str]) -> dict[str, list[str]]:
    """The command of each part (full size, or ``quick``)."""
    py = [sys.executable]
    bench = SCRIPTS / "benchmarks"
    loop = (
        ["--layers", "20", "--width", "50", "--sim-nodes", "20"]
        if quick
        else ["--layers", "100", "--width", "100", "--sim-nodes", "100"]
    )
    return {
        "throughput": [*py, str(bench / "throughput.py"), *(["--scale", "0.1"] if quick else []), *throughput_args],
        "decision_latency": ["bash", str(SCRIPTS / "bench_loop"), *loop],
        "decision_latency_paced": ["bash", str(SCRIPTS / "bench_loop"), *loop, "--run-s", "1", "--jitter", "0.5"],
        "view_rebuild": [*py, str(bench / "views_bench.py"), "--events", "100000" if quick else "1000000"],
        "archive": [
            *py,
            str(bench / "archive_bench.py"),
            *(["--events", "1000000", "--replay-tasks", "1000"] if quick else []),
        ],
        "makespan": [*py, str(bench / "makespan.py"), "--policies", "eft" if quick else "eft,seed,fifo"],
        "locality": [*py, str(bench / "locality.py"), "--bandwidth", "10MB/s", *(["--only", "n200"] if quick else [])],
        "peers": [*py, str(bench / "peers" / "run.py"), *(["--scale", "0.1"] if quick else [])],
        "build": [*py, str(bench / "build_bench.py")],
        "cpu_floor": [*py, str(bench / "cpu_floor.py"), "--rows", "a3,b3,c3,c3_1f,c2,c2_1f"]
        + (["--tasks", "1000"] if quick else []),
    }


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _row(measure: str, goal: str, measured: Any, met: bool | None) -> dict[str, Any]:
    return {"measure": measure, "goal": goal, "measured": measured, "met": met}


def _throughput_rows(t: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in ("independent", "layered"):
        ratio = _get(t, "ratio_niyantra_over_dask", name)
        if ratio is not None:
            ours, theirs = _get(t, "niyantra", name, "tasks_per_s"), _get(t, "dask", name, "tasks_per_s")
            rows.append(
                _row(
                    f"throughput {name} (tasks/s, niyantra / Dask)",
                    ">= 2x Dask",
                    f"{ours} / {theirs} = {ratio}",
                    ratio >= 2.0,
                )
            )
        cpu, budget = _get(t, "niyantra", name, "cpu_ms_per_task"), _get(t, "cpu_budget_ms_per_task_for_2x_dask", name)
        if cpu and budget is not None:
            stored = _get(t, "niyantra", name, "stored_messages_per_task") or {}
            measured = {
                "total": cpu.get("total"),
                "nats-server": cpu.get("nats-server"),
                "budget": budget,
                "fsynced_messages_per_task": round(sum(v for k, v in stored.items() if not k.startswith("KV_")), 2),
                "view_writes_per_task": round(sum(v for k, v in stored.items() if k.startswith("KV_")), 2),
            }
            rows.append(
                _row(
                    f"CPU ms per task, all processes, {name}",
                    f"<= {budget} (2x Dask on these cores)",
                    measured,
                    cpu.get("total", float("inf")) <= budget,
                )
            )
        procs = _get(t, "niyantra", name, "processes") or {}
        if procs:
            peak = {p: v.get("peak_rss_mib") for p, v in sorted(procs.items())}
            rows.append(_row(f"peak RSS per process, {name} (MiB)", "reported", peak, None))
    return rows


def _latency_rows(d: Any, load: str) -> list[dict[str, Any]]:
    p50, p99 = _get(d, "view_change_to_append_ms", "p50"), _get(d, "view_change_to_append_ms", "p99")
    if p99 is None:
        return []
    floor = _get(d, "append_floor_loaded", "single_ms") or {}
    made = _get(d, "view_change_to_decided_ms") or {}
    return [
        _row(
            f"decision latency, view change to dispatch appended, {load} (ms)",
            "p99 <= 10",
            f"p50 {p50}, p99 {p99}",
            p99 <= 10,
        ),
        _row(
            f"view change to decisions made, before the append, {load} (ms; the decider's own part)",
            "reported",
            f"p50 {made.get('p50')}, p99 {made.get('p99')}, within 10 ms {made.get('share_within_10ms')}",
            None,
        ),
        _row(
            f"a bare append's ack while that run goes, {load} (ms; the floor under the decision's append)",
            "reported",
            f"p50 {floor.get('p50')}, p99 {floor.get('p99')}",
            None,
        ),
    ]


def _views_rows(v: Any) -> list[dict[str, Any]]:
    rate = _get(v, "rebuild", "events_per_s")
    if rate is None:
        return []
    lat = {k: (x.get("p50_ms"), x.get("p99_ms")) for k, x in (_get(v, "latency") or {}).items()}
    return [
        _row(f"view rebuild over {_get(v, 'events')} events (events/s)", ">= 100000", rate, rate >= 100_000),
        _row("append to view update (ms, p50 and p99 per view)", "reported", lat, None),
    ]


def _archive_rows(a: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, label in (("count_by_type_s", "count by type"), ("p99_duration_by_node_s", "p99 duration by node")):
        q = _get(a, key)
        if q is not None:
            rows.append(_row(f"archive query over {_get(a, 'archive_events')} events: {label} (s)", "< 1", q, q < 1.0))
    replay = _get(a, "replay_check", "jobs_1", "events_per_s")
    if replay is not None:
        rows.append(_row("replay --check (events/s)", ">= 50000", replay, replay >= 50_000))
    return rows


def _makespan_rows(m: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for policy, s in (_get(m, "summary") or {}).items():
        worst = max((s.get("by_platform") or {"-": s.get("geomean_over_heft")}).values())
        eft = policy == "eft"
        rows.append(
            _row(
                f"makespan / HEFT, policy {policy} (geomean per platform)",
                "<= 1.00 on every platform" if eft else "reported",
                s.get("by_platform"),
                worst <= 1.0 if eft else None,
            )
        )
    return rows


def _locality_rows(m: Any) -> list[dict[str, Any]]:
    g = _get(m, "geomean_over_heft")
    if g is None:
        return []
    measure = f"makespan with transfers at {_get(m, 'bandwidth')} / HEFT with communication costs (geomean)"
    return [_row(measure, "<= 1.00", {"all": g, **(_get(m, "by_platform") or {})}, g <= 1.0)]


def _build_rows(b: Any) -> list[dict[str, Any]]:
    ratio = _get(b, "cached_over_cold")
    if ratio is None:
        return []
    measured = {"cold_s": _get(b, "cold", "wall_s"), "cached_s": _get(b, "cached", "wall_s"), "ratio": ratio}
    return [_row(f"cached build / cold build wall time ({_get(b, 'project')})", "<= 0.05", measured, ratio <= 0.05)]


def _floor_rows(f: Any) -> list[dict[str, Any]]:
    rows = _get(f, "rows") or {}
    total = {name: _get(r, "ms_per_task", "total") for name, r in rows.items()}
    if total.get("c3") is None:
        return []
    measured = {**total, "nats-server (c3)": _get(rows, "c3", "ms_per_task", "nats-server")}
    measure = "CPU ms per task floor: the event traffic alone, no logic (c3: 3 events, 4 followers, agents, a view)"
    return [_row(measure, "<= 2 (issue 20)", measured, total["c3"] <= 2.0)]


def _peer_figures(fig: Any) -> Any:
    """A peer's (or niyantra's) figures for one workload in one line, or what it said instead."""
    if not isinstance(fig, dict):
        return fig if fig is not None else "not run"
    cpu = fig.get("cpu_ms_per_task") or {}
    return {
        "tasks_per_s": fig.get("tasks_per_s"),
        "cpu_ms_per_task": cpu.get("total_with_task_processes", cpu.get("total")),
        "stored_per_task": fig.get("stored_per_task") or fig.get("stored_bytes_per_task"),
    }


def _peer_rows(t: Any, p: Any) -> list[dict[str, Any]]:
    peers = _get(p, "peers")
    if not isinstance(peers, dict):
        return []
    rows: list[dict[str, Any]] = []
    for name in ("independent", "layered"):
        ours = _get(t, "niyantra", name, "tasks_per_s")
        rate = {k: _get(v, name, "tasks_per_s") for k, v in peers.items()}
        durable = {k: r for k, r in rate.items() if k in DURABLE_PEERS and isinstance(r, int | float)}
        table = {"niyantra": _peer_figures(_get(t, "niyantra", name))}
        table |= {k: _peer_figures(v.get(name) if isinstance(v, dict) else v) for k, v in sorted(peers.items())}
        rows.append(
            _row(
                f"peers, {name} (tasks/s, CPU ms per task with the task shells, stored per task)",
                "reported",
                table,
                None,
            )
        )
        if durable and ours:
            best = max(durable, key=durable.__getitem__)
            ratio = round(ours / durable[best], 3)
            figure = f"{ours} / {best} {durable[best]} = {ratio}"
            rows.append(_row(f"throughput {name}, niyantra / best durable peer", ">= 2x", figure, ratio >= 2.0))
        shell = rate.get("dask_shell")
        if isinstance(shell, int | float) and ours:
            ratio = round(ours / shell, 3)
            figure = f"{ours} / {shell} = {ratio}"
            rows.append(_row(f"throughput {name}, niyantra / Dask running the shell", ">= 1x", figure, ratio >= 1.0))
    return rows


def summarize(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measure the issues name, from whichever parts ran (pure: parts in, rows out)."""
    return [
        *_throughput_rows(parts.get("throughput")),
        *_peer_rows(parts.get("throughput"), parts.get("peers")),
        *_latency_rows(parts.get("decision_latency"), "saturated"),
        *_latency_rows(parts.get("decision_latency_paced"), "paced: tasks take 0.5-1.5 s"),
        *_views_rows(parts.get("view_rebuild")),
        *_archive_rows(parts.get("archive")),
        *_makespan_rows(parts.get("makespan")),
        *_locality_rows(parts.get("locality")),
        *_build_rows(parts.get("build")),
        *_floor_rows(parts.get("cpu_floor")),
    ]


def run_part(name: str, cmd: list[str]) -> tuple[Any, float]:
    """Run one benchmark; its JSON (or an error record) and its wall seconds."""
    print(f"[bench] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    seconds = round(time.perf_counter() - t0, 1)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "stdout_tail": proc.stdout[-2000:]}, seconds
    try:
        return json.loads(proc.stdout), seconds
    except json.JSONDecodeError as e:
        return {"error": f"not JSON: {e}", "stdout_tail": proc.stdout[-2000:]}, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (the goals are for the full ones)")
    args, rest = ap.parse_known_args()
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        sys.exit(f"error: --parts: unknown part {', '.join(unknown) or '(none given)'}; choose from {', '.join(PARTS)}")
    cmds = commands(args.quick, rest)
    load = [round(x, 2) for x in os.getloadavg()]
    parts: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in chosen:
        parts[name], seconds[name] = run_part(name, cmds[name])
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": load},
        "notes": f"2 cores shared with other work; load averages (1, 5, 15 min) at start {load}: noisy figures",
        "quick": args.quick,
        "seconds": seconds,
        "summary": summarize(parts),
        "parts": parts,
    }
    print(json.dumps(out, indent=2))
    if any("error" in p for p in parts.values() if isinstance(p, dict)):
        sys.exit(1)


if __name__ == "__main__":
    main()

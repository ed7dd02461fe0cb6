"""The CPU floor per task that niyantra's fixed choices imply, measured with none of its logic.

DESIGN.md fixes: every fact an event on one durable stream (file storage, ``sync_interval:
always``), each appended with a per-task sequence guard; the projectors, the decider, the
watchdog and the agents as separate processes. This benchmark runs only that traffic: a real
nats-server (the venv's, temp store dir, free loopback port, as tests/conftest.py starts it) and
stand-in processes that append, fetch and decode messages of the real events' sizes and headers
and do nothing else. Each process's CPU (user + system, /proc/<pid>/stat, as throughput.py reads
it) is taken after every process is set up and again when the last task's traffic is through, so
start-up is excluded; ms/task = CPU / tasks.

The stand-ins, one OS process each:

- ``writer`` (the decider): appends each task's ``TaskDispatched`` (1305-byte payload, as stored
  by a layered run) in atomic batches of ``--batch``, each guarded by its task's subject
  (``Nats-Expected-Last-Subject-Sequence``). Alone (rows ``a``) it also appends the task's
  ``TaskStarted`` (331 bytes) and ``TaskCompleted`` (581 bytes), guarded, ``--slots * --agents``
  tasks at a time;
- ``agent`` x ``--agents``: the real agent's durable pull consumer of its node's dispatches
  (explicit ack; pull requests kept open for the free slots, as node_agent/intake.py), ``--slots``
  tasks at a time: decode, append started (E=3 only) and completed, guarded, each awaited, then
  ack the dispatch and ask for one more;
- ``follower`` x ``--followers`` (the 4 projectors): follow every event from sequence 1 and
  decode each (msgspec, to a dict), through the projectors' ordered push consumer
  (`orchestrator.runtime.ordered.subscribe_ordered`; ``push``) or an ephemeral pull consumer
  fetching 256 at a time (``pull``). In rows ``c`` the first one is the readiness view: per chunk
  it writes ``--kv-per-task`` keys per task (the task's entry at completion; 2: at dispatch too;
  ``c3_kv7``: 7, about the readiness view's volume today) and one checkpoint to a memory KV
  bucket, as one atomic batch;
- ``kvwatch`` x 2 (rows ``c``; the decider and the watchdog read the views, not the log): watch
  that bucket (`orchestrator.runtime.ordered.watch_bucket`) and decode every value.

Rows: ``a`` the log alone (writer only), ``b`` + agents + followers, ``c`` + the view's KV writes
and its two readers; each with E=3 events per task (dispatched, started, completed) and E=2 (if
dispatch and start were one event); ``b``/``c`` with pull followers; ``c3_1f``/``c2_1f`` with one
follower for all four projections (the price of one process per projector); ``r3`` the writer
alone, then the followers reading the whole stored stream (full batches: nats-py's per-message
floor, push against pull); ``a`` without fsync
(``nosync``: the price of ``sync_interval: always``) and without the guard (``noguard``).

    python scripts/benchmarks/cpu_floor.py [--tasks 2000] [--rows a3,b3,...] (scripts/bench_floor)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from floor_traffic import BUCKET, SIZES  # noqa: E402 - the stand-in processes (floor_traffic.py)

from orchestrator.runtime.connection import connect  # noqa: E402
from orchestrator.runtime.natsserver import RunningServer, server_args, start_server  # noqa: E402
from orchestrator.writeside.eventlog import EventLog  # noqa: E402

TRAFFIC = HERE / "floor_traffic.py"
# e: events per task; stage: a (log only), b (+ agents, followers), c (+ KV view, its readers),
# r (a, then followers catching up on the whole stream);
# fetch: the followers' (push, pull); followers: how many (default --followers); sync, guard: on
ROWS: dict[str, dict[str, Any]] = {
    "a3": {"e": 3, "stage": "a"},
    "a3_nosync": {"e": 3, "stage": "a", "sync": False},
    "a3_noguard": {"e": 3, "stage": "a", "guard": False},
    "b3": {"e": 3, "stage": "b"},
    "b3_pull": {"e": 3, "stage": "b", "fetch": "pull"},
    "c3": {"e": 3, "stage": "c"},
    "c3_pull": {"e": 3, "stage": "c", "fetch": "pull"},
    "c3_1f": {"e": 3, "stage": "c", "followers": 1},
    "c3_kv7": {"e": 3, "stage": "c", "kv": 7},
    "r3_push": {"e": 3, "stage": "r"},
    "r3_pull": {"e": 3, "stage": "r", "fetch": "pull"},
    "a2": {"e": 2, "stage": "a"},
    "b2": {"e": 2, "stage": "b"},
    "c2": {"e": 2, "stage": "c"},
    "c2_1f": {"e": 2, "stage": "c", "followers": 1},
}


def say(msg: str) -> None:
    print(f"[floor] {msg}", file=sys.stderr, flush=True)


def cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def start_nats(tmp: Path, sync: bool) -> RunningServer:
    config = tmp / "floor.conf"
    sync_line = ", sync_interval: always" if sync else ""
    config.write_text(f"jetstream {{ store_dir: $NIYANTRA_STORE_DIR{sync_line} }}\nmax_payload: 8MB\n")
    args = server_args(config=config, port=-1, http_port=None, store_dir=tmp / "js")
    return start_server(args, tmp / "nats.log", store_dir=tmp / "js")


async def make_streams(url: str) -> None:
    from projections.buckets import ensure_bucket

    nc = await connect(url)
    await EventLog(nc).ensure_stream(replicas=1)
    await ensure_bucket(nc, BUCKET, replicas=1)
    await nc.close()


async def stored(url: str) -> dict[str, int]:
    nc = await connect(url)
    out = {s.config.name: int(s.state.last_seq) for s in await nc.jetstream().streams_info()}
    await nc.close()
    return out


def process_specs(row: dict[str, Any], a: argparse.Namespace) -> dict[str, list[str]]:
    """Each stand-in process of ``row``: its name and its own arguments (``--role`` first)."""
    specs = {"writer": ["--role", "writer", "--batch", str(a.batch)] + (["--alone"] if row["stage"] in "ar" else [])}
    if row["stage"] in "bc":
        specs.update({f"agent-{n}": ["--role", "agent", "--node", f"node-{n}"] for n in range(1, a.agents + 1)})
    if row["stage"] != "a":
        for k in range(row.get("followers", a.followers)):
            per_task = str(row.get("kv", a.kv_per_task))
            kv = ["--kv", "--kv-per-task", per_task] if row["stage"] == "c" and k == 0 else []
            kv += ["--after"] if row["stage"] == "r" else []
            specs[f"follower-{k + 1}"] = ["--role", "follower", "--fetch", row.get("fetch", "push"), *kv]
    if row["stage"] == "c":
        specs.update({"kvwatch-decider": ["--role", "kvwatch"], "kvwatch-watchdog": ["--role", "kvwatch"]})
    return specs


def tell(procs: dict[str, subprocess.Popen[str]], word: str) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.stdin.write(word + "\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]


def hear(procs: dict[str, subprocess.Popen[str]], word: str) -> dict[str, str]:
    """Each process's next line, which must begin with ``word``; the rest of it by process."""
    out = {}
    for name, p in procs.items():
        line = p.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith(word):
            raise RuntimeError(f"{name}: {line or 'no answer'} (exit {p.poll()})")
        out[name] = line[len(word) :].strip()
    return out


def traffic(url: str, row: dict[str, Any], a: argparse.Namespace) -> tuple[dict[str, float], float, dict[str, Any]]:
    """Run ``row``'s processes against the server at ``url``: CPU seconds of each over the
    traffic (start-up excluded; ``nats-server`` is added by the caller), seconds, their answers."""
    common = ["--url", url, "--tasks", str(a.tasks), "--e", str(row["e"]), "--agents", str(a.agents)]
    common += ["--slots", str(a.slots), "--graph", f"floor-{uuid.uuid4().hex[:8]}", "--timeout", str(a.timeout)]
    common += [] if row.get("guard", True) else ["--no-guard"]
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, own in process_specs(row, a).items():
            cmd = [sys.executable, str(TRAFFIC), *own, *common]
            procs[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hear(procs, "ready")
        before = {n: cpu_s(p.pid) for n, p in procs.items()}
        t0 = time.perf_counter()
        tell(procs, "go")
        answers = {n: json.loads(text) for n, text in hear(procs, "done").items()}
        seconds = time.perf_counter() - t0
        return {n: cpu_s(p.pid) - before[n] for n, p in procs.items()}, seconds, answers
    finally:
        tell(procs, "exit")
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_row(name: str, row: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
    """One row on a fresh server: ms/task by process and by kind, stored messages per task."""
    with tempfile.TemporaryDirectory(prefix="niyantra-floor-") as tmp:
        server = start_nats(Path(tmp), row.get("sync", True))
        try:
            asyncio.run(make_streams(server.url))
            server_before = cpu_s(server.process.pid)
            cpu, seconds, answers = traffic(server.url, row, a)
            cpu["nats-server"] = cpu_s(server.process.pid) - server_before
            heads = asyncio.run(stored(server.url))
        finally:
            server.stop()
    per = {n: round(s * 1000 / a.tasks, 3) for n, s in sorted(cpu.items())}
    kinds: dict[str, float] = {}
    for n, ms in per.items():
        kind = n if n == "nats-server" else n.split("-")[0]
        kinds[kind] = round(kinds.get(kind, 0.0) + ms, 3)
    kinds["total"] = round(sum(per.values()), 3)
    result = {
        "what": describe(row, a),
        "seconds": round(seconds, 2),
        "ms_per_task": kinds,
        "ms_per_task_by_process": per,
        "stored_messages_per_task": {s: round(n / a.tasks, 2) for s, n in heads.items()},
    }
    if row["stage"] == "c":
        result["kv_chunks"] = answers["follower-1"]["chunks"]
    say(f"{name}: {kinds} in {seconds:.1f} s")
    return result


def describe(row: dict[str, Any], a: argparse.Namespace) -> str:
    parts = [f"E={row['e']} events/task", "fsync every write" if row.get("sync", True) else "default fsync (2 min)"]
    parts += [] if row.get("guard", True) else ["no guard"]
    followers = f"{row.get('followers', a.followers)} {row.get('fetch', 'push')} follower(s) of every event"
    if row["stage"] in "ar":
        parts.append("writer alone appends all")
    if row["stage"] == "r":
        parts.append(f"then {followers} read the whole stream (catch-up: full batches)")
    if row["stage"] in "bc":
        parts.append(f"{a.agents} agents + {followers}")
    if row["stage"] == "c":
        parts.append(f"+ {row.get('kv', a.kv_per_task)} KV write(s)/task + checkpoint per chunk, 2 KV watchers")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--followers", type=int, default=4, help="processes following every event (the projectors)")
    ap.add_argument("--batch", type=int, default=32, help="dispatches per atomic append")
    ap.add_argument("--kv-per-task", type=int, default=1, help="view entries written per task (rows c)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds a row's traffic may take")
    a = ap.parse_args()
    names = [r.strip() for r in a.rows.split(",") if r.strip()]
    if bad := [r for r in names if r not in ROWS]:
        sys.exit(f"error: unknown row(s) {', '.join(bad)} (known: {', '.join(ROWS)})")
    out: dict[str, Any] = {
        "tasks": a.tasks,
        "machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)},
        "event_payload_bytes": SIZES,
        "rows": {name: run_row(name, ROWS[name], a) for name in names},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

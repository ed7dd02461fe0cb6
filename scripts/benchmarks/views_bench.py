"""Views benchmark: rebuild throughput over N events and append→view-update latency (JSON).

A fresh nats-server (temporary store, default fsync: the log's durability is not what is
measured here) is filled with a realistic mix: graphs of 1,000 tasks in chains of 10, each task
dispatched, started and completed (10 % fail, and the rest of their chain is cancelled and never
runs; 2 % of attempts are lost and tried again), and node observations from 20 nodes in between.
Measured:

- ``replay``: nats-py's ordered-consumer read of the whole stream without folding (for reference);
- ``bulk_read``: the read ``views rebuild`` uses (`projections.logread`) without folding (the floor);
- ``rebuild``: ``niyantra views rebuild``'s rebuild of all three views (readiness, node-scores,
  confidence): with ``--processes 2`` readiness is read and folded here and the chunks are fed
  to a worker process folding the other two (`projections.rebuild.worker`); with ``1`` all
  three are folded here (each event decoded once); ``auto`` (default) does what ``views
  rebuild`` does (two when a core is idle). Its ``cpu_s`` includes the worker's (``worker_cpu_s``);
- ``projector_catch_up_s``: the three projector processes started on the full stream until each
  has written its checkpoint at the head (in parallel, one process each);
- ``latency``: with the projector processes running, events appended one at a time; the time from
  the append call until the KV value reflects the event's sequence (readiness task key for a
  dispatch, node-scores node key for an observation), p50 and p99.

``--digest`` adds ``views_sha256``: a SHA-256 over every key and encoded value of every rebuilt
view (sorted), to show that a change to the folds left every value byte-identical. Each read
also reports ``server_cpu_s``, the CPU seconds nats-server spent meanwhile (it shares the cores).

Each read also reports ``cpu_s`` (CPU seconds of this process, `time.process_time`) and
``events_per_cpu_s``: on a shared machine the wall-clock rate says as much about the other
processes as about this code; the CPU rate is the one to compare between runs.

``--store DIR`` keeps the filled log in ``DIR`` (filled by the first run asking for that many
events) and runs every later run on a fresh copy of it: the same log each time, without the
minutes of filling.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import nats  # noqa: E402
from nats.js.api import ConsumerConfig, DeliverPolicy  # noqa: E402
from views_log import GENERATOR, generate  # noqa: E402  (this script's folder is on the path)

from orchestrator.runtime.natsserver import server_args, start_server  # noqa: E402
from orchestrator.writeside.eventlog import Append, EventLog, event_append  # noqa: E402
from projections.buckets import ensure_bucket, read_checkpoint  # noqa: E402
from projections.logread import read_chunks  # noqa: E402
from projections.rebuild.build import rebuild, stream_head  # noqa: E402
from projections.rebuild.worker import BuiltView  # noqa: E402
from projections.runner import PROJECTIONS  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas import records as rec  # noqa: E402
from schemas import subjects as S  # noqa: E402


async def fill(nc, n: int) -> dict:
    """Append the events in JetStream atomic batches of 1,000 (one round trip each): fast, and
    the benchmark is about reading the log, not writing it."""
    log = EventLog(nc)
    await log.ensure_stream()
    started = time.perf_counter()
    sent = 0
    chunk: list[Append] = []
    for subject, payload in generate(n):
        chunk.append(Append(subject, payload))
        if len(chunk) == S.MAX_ATOMIC_BATCH:
            await log.append_atomic(chunk, timeout=60)
            sent += len(chunk)
            chunk = []
    if chunk:
        await log.append_atomic(chunk, timeout=60)
        sent += len(chunk)
    return {"events": sent, "fill_s": round(time.perf_counter() - started, 2)}


async def replay_only(nc, head: int) -> float:
    done = asyncio.get_running_loop().create_future()
    count = 0

    async def cb(msg):
        nonlocal count
        count += 1
        if msg.metadata.sequence.stream >= head and not done.done():
            done.set_result(None)

    t = time.perf_counter()
    sub = await nc.jetstream().subscribe(
        f"{S.ROOT}.>",
        cb=cb,
        ordered_consumer=True,
        pending_msgs_limit=200_000,
        pending_bytes_limit=512 * 1024 * 1024,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    await done
    await sub.unsubscribe()
    return time.perf_counter() - t


async def bulk_read(nc, head: int) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    count = 0
    async for chunk in read_chunks(nc, 1, head):
        count += len(chunk)
    assert count == head, (count, head)
    return time.perf_counter() - t, time.process_time() - c


def rate(events: int, wall_s: float, cpu_s: float) -> dict:
    return {
        "seconds": round(wall_s, 2),
        "events_per_s": round(events / wall_s),
        "cpu_s": round(cpu_s, 2),
        "events_per_cpu_s": round(events / cpu_s),
    }


def server_cpu(server) -> float:
    """CPU seconds (user + system) nats-server has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def views_digest(rb) -> str:
    """SHA-256 over every (view, key, encoded value) of a rebuild, sorted."""
    h = hashlib.sha256()
    enc = msgspec.json.Encoder()
    for name in sorted(rb.folds):
        for key, value in sorted(rb.folds[name].snapshot().items()):
            h.update(name.encode() + b"\0" + key.encode() + b"\0" + enc.encode(value) + b"\n")
    return h.hexdigest()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 2)


async def latency(nc, samples: int) -> dict:
    log = EventLog(nc)
    js = nc.jetstream()
    specs = tuple(rec.TaskSpec(id=f"t{i}", command="x") for i in range(samples))
    await log.append_event(
        ev.GraphSubmitted(event_id="lat", occurred_at=datetime.now(UTC), graph_id="lat", tasks=specs)
    )
    out: dict[str, list[float]] = {"readiness": [], "node-scores": []}
    for i in range(samples):
        for name, bucket, key, event in (
            (
                "readiness",
                S.KV_READINESS,
                f"task.lat.t{i}",
                ev.TaskDispatched(
                    event_id=f"lat-d{i}",
                    occurred_at=datetime.now(UTC),
                    graph_id="lat",
                    task_id=f"t{i}",
                    node_id="n0",
                    attempt=1,
                    command="x",
                ),
            ),
            (
                "node-scores",
                S.KV_NODE_SCORES,
                "node.n0",
                ev.NodeObserved(
                    event_id=f"lat-o{i}",
                    occurred_at=datetime.now(UTC),
                    node_id="n0",
                    cpu_percent=1,
                    memory_percent=1,
                    load1=0,
                    running_tasks=0,
                ),
            ),
        ):
            kv = await js.key_value(bucket)
            watcher = await kv.watch(key)
            await watcher.updates(timeout=5)  # the current value (or None)
            t = time.perf_counter()
            seq = await log.append(event_append(event))
            while True:
                entry = await watcher.updates(timeout=10)
                if entry is not None and entry.value and msgspec.json.decode(entry.value)["seq"] >= seq:
                    break
            out[name].append(time.perf_counter() - t)
            await watcher.stop()
    return {name: {"p50_ms": pct(xs, 0.5), "p99_ms": pct(xs, 0.99), "samples": len(xs)} for name, xs in out.items()}


def serve(store: Path, log: Path):
    return start_server(server_args(config=None, port=-1, http_port=None, store_dir=store), log, store_dir=store)


async def filled_store(store: Path, events: int) -> dict:
    """The log of ``events`` events kept in ``store`` (filled now unless it already is)."""
    marker = store / "filled.json"
    if marker.exists():
        kept = json.loads(marker.read_text())
        if kept["target_events"] != events:
            raise SystemExit(f"--store {store}: holds {kept['target_events']} events, not {events}; use another dir")
        if kept.get("generator") != GENERATOR:
            raise SystemExit(
                f"--store {store}: filled by generator {kept.get('generator', 1)}, not {GENERATOR}; use another dir"
            )
        return {**kept, "reused_store": str(store)}
    shutil.rmtree(store / "js", ignore_errors=True)
    server = serve(store / "js", store / "nats.log")
    try:
        nc = await nats.connect(server.url)
        filled = {"target_events": events, "generator": GENERATOR, **await fill(nc, events)}
        await nc.close()
    finally:
        server.stop()
    marker.write_text(json.dumps(filled))
    return filled


async def main(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="niyantra-bench-views-"))
    filled: dict = {}
    if args.store is not None:
        args.store.mkdir(parents=True, exist_ok=True)
        filled = await filled_store(args.store, args.events)
        shutil.copytree(args.store / "js", tmp / "js")
    server = serve(tmp / "js", tmp / "nats.log")
    procs: list[subprocess.Popen] = []
    try:
        nc = await nats.connect(server.url)
        result: dict = {"benchmark": "views", "target_events": args.events}
        result.update({k: v for k, v in filled.items() if k != "target_events"} or await fill(nc, args.events))
        head = await stream_head(nc)
        result["stream_seq"] = head
        if not args.skip_replay:
            replay_s = await replay_only(nc, head)
            result["replay"] = {"seconds": round(replay_s, 2), "events_per_s": round(head / replay_s)}
        srv = server_cpu(server)
        result["bulk_read"] = rate(head, *await bulk_read(nc, head))
        result["bulk_read"]["server_cpu_s"] = round(server_cpu(server) - srv, 2)
        cpu, kids, srv = time.process_time(), os.times(), server_cpu(server)
        rb = await rebuild(nc, split={"auto": None, "1": False, "2": True}[args.processes])
        cpu, after, srv = time.process_time() - cpu, os.times(), server_cpu(server) - srv
        worker_cpu = after.children_user + after.children_system - kids.children_user - kids.children_system
        result["rebuild"] = {
            "views": list(rb.folds),
            "processes": 2 if any(isinstance(f, BuiltView) for f in rb.folds.values()) else 1,
            "processes_asked": args.processes,
            **rate(head, rb.seconds, cpu + worker_cpu),
            "worker_cpu_s": round(worker_cpu, 2),
            "server_cpu_s": round(srv, 2),
            "goal_events_per_s": 100_000,
            "keys": {n: len(f.snapshot()) for n, f in rb.folds.items()},
        }
        if args.digest:
            result["rebuild"]["views_sha256"] = views_digest(rb)
        del rb
        if args.skip_live:
            await nc.close()
            return result
        for p in PROJECTIONS.values():
            await ensure_bucket(nc, p.bucket)
        t = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli.main", "projector", name, "--nats-url", server.url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in PROJECTIONS
        ]
        while True:
            seqs = [(await read_checkpoint(nc, p.bucket)).seq for p in PROJECTIONS.values()]
            if all(s >= head for s in seqs):
                break
            await asyncio.sleep(0.1)
        result["projector_catch_up_s"] = round(time.perf_counter() - t, 2)
        result["latency"] = await latency(nc, args.samples)
        await nc.close()
        return result
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--store", type=Path, help="Keep the filled log here and reuse it (a copy per run).")
    ap.add_argument("--skip-replay", action="store_true", help="Leave out the nats-py ordered-consumer read.")
    ap.add_argument("--skip-live", action="store_true", help="Leave out the projector catch-up and the latency.")
    ap.add_argument(
        "--processes",
        choices=["auto", "1", "2"],
        default="auto",
        help="Rebuild in one process, split over two (projections.rebuild.worker), or as views rebuild decides.",
    )
    ap.add_argument("--no-uvloop", action="store_true", help="Use the default asyncio loop.")
    ap.add_argument("--digest", action="store_true", help="Add a SHA-256 of every rebuilt view's keys and values.")
    a = ap.parse_args()
    if a.no_uvloop:
        out = asyncio.run(main(a))
    else:
        import uvloop

        out = uvloop.run(main(a))
    out["event_loop"] = "asyncio" if a.no_uvloop else "uvloop"
    print(json.dumps(out, indent=2))

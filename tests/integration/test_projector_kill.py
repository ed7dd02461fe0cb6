"""Projector processes killed with SIGKILL mid-run, restarted: their views equal a rebuild from zero.
And ``niyantra views rebuild --verify`` passes on the result and fails on a tampered view."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.writeside.eventlog import Append, EventLog, event_append
from projections.buckets import ensure_bucket, read_checkpoint
from projections.rebuild.build import stream_head
from projections.rebuild.verify import verify_one
from projections.runner import PROJECTIONS
from schemas import eventbase as evbase
from schemas import events as ev
from schemas import records as rec
from schemas import subjects as S
from tests.conftest import assert_eventually

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TASKS = 2000


def task_events(rng: random.Random, i: int) -> list[evbase.Event]:
    t, node = f"t{i}", f"n{i % 3}"
    at = T0 + timedelta(seconds=i)
    common = dict(graph_id="g", task_id=t, node_id=node, attempt=1)
    out: list[evbase.Event] = [
        ev.TaskDispatched(event_id=f"d{i}", occurred_at=at, command="x", expected_duration_s=2.0, **common),
        ev.TaskStarted(event_id=f"s{i}", occurred_at=at, **common),
    ]
    if rng.random() < 0.1:
        out.append(ev.TaskLost(event_id=f"l{i}", occurred_at=at, reason="gone", **common))
    else:
        outcome = rng.choice(["success", "success", "failure"])
        out.append(
            ev.TaskCompleted(event_id=f"c{i}", occurred_at=at, outcome=outcome, duration_s=rng.random() * 4, **common)
        )
    out.append(
        ev.NodeObserved(
            event_id=f"o{i}", occurred_at=at, node_id=node, cpu_percent=1, memory_percent=1, load1=0, running_tasks=1
        )
    )
    return out


async def feed(log: EventLog, start: int, stop: int, rng: random.Random, halt: asyncio.Event | None = None) -> int:
    """Append the events of tasks [start, stop) in atomic batches, with an occasional malformed message.

    With ``halt``, paces itself and stops early once ``halt`` is set; returns the next task index.
    """
    for lo in range(start, stop, 25):
        if halt is not None and halt.is_set():
            return lo
        items: list[Append] = [event_append(e) for i in range(lo, min(stop, lo + 25)) for e in task_events(rng, i)]
        if lo % 500 == 0:
            items.append(Append(f"{S.ROOT}.bad.x.Garbage", b"\xff not an event", {S.HDR_MSG_ID: f"bad{lo}"}))
        await log.append_atomic(items)
        if halt is not None:
            await asyncio.sleep(0.02)  # pacing: a live stream, not a wait for a condition
    return stop


def start_projector(name: str, url: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "projector", name, "--nats-url", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(120)
async def test_sigkill_mid_run_and_restart_leave_views_equal_to_a_rebuild(nats_server, nc):
    rng = random.Random(7)
    log = EventLog(nc)
    await log.ensure_stream()
    specs = tuple(rec.TaskSpec(id=f"t{i}", command="x", type=f"k{i % 4}", max_attempts=2) for i in range(TASKS))
    await log.append_event(ev.GraphSubmitted(event_id="s", occurred_at=T0, graph_id="g", tasks=specs))
    for p in PROJECTIONS.values():
        await ensure_bucket(nc, p.bucket)
    procs = {name: start_projector(name, nats_server.url) for name in PROJECTIONS}
    try:
        halt = asyncio.Event()
        writer = asyncio.create_task(feed(log, 0, TASKS, rng, halt))

        async def mid_run():
            seqs = [(await read_checkpoint(nc, p.bucket)).seq for p in PROJECTIONS.values()]
            return all(s > 1 for s in seqs) and not writer.done()

        await assert_eventually(mid_run, message="every projector has written while events still arrive")
        for proc in procs.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        halt.set()
        await feed(log, await writer, TASKS, rng)  # events the dead projectors miss
        head = await stream_head(nc)
        procs = {name: start_projector(name, nats_server.url) for name in PROJECTIONS}

        async def caught_up():
            return all([(await read_checkpoint(nc, p.bucket)).seq == head for p in PROJECTIONS.values()])

        await assert_eventually(caught_up, timeout=60, message="restarted projectors reach the head")
        for name in PROJECTIONS:
            verdict = await verify_one(nc, name)
            assert verdict.problems == [] and verdict.seq == head, name
        cp = await read_checkpoint(nc, S.KV_READINESS)
        assert cp.malformed == TASKS // 500  # every garbage message became a dead letter, once
        await asyncio.to_thread(cli_verify_passes_then_catches_tampering, nats_server.url)
        tampered = await verify_one(nc, "readiness", rounds=2)  # (the tamper is still in KV)
        assert tampered.problems and "task.g.t7" in tampered.problems[0]
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=20)


def cli_verify_passes_then_catches_tampering(url: str) -> None:
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "views", "rebuild", "--verify", "--json", "--nats-url", url]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert set(report["verify"]) == set(PROJECTIONS) and all(not v["problems"] for v in report["verify"].values())
    asyncio.run(_tamper(url))
    bad = subprocess.run(
        cmd[:-3] + ["--view", "readiness", "--nats-url", url], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "task.g.t7" in bad.stdout and "DIFFERS" in bad.stdout


async def _tamper(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value(S.KV_READINESS)
    await kv.put("task.g.t7", b'{"state": "succeeded"}')
    await nc.close()

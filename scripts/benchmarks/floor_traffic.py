"""The stand-in processes of `cpu_floor` (scripts/bench_floor): niyantra's traffic, none of its logic.

Each runs as its own process (``--role``): connects, sets up its consumer, prints ``ready``,
waits for ``go`` on stdin, does its part of the traffic of ``--tasks`` tasks, prints ``done`` and
a JSON answer, and exits on the next line (its parent reads its CPU in between). What each role
stands for is told in cpu_floor.py's docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec  # noqa: E402

from orchestrator.runtime.connection import connect  # noqa: E402
from orchestrator.writeside.eventlog import Append, EventLog  # noqa: E402
from schemas import subjects as S  # noqa: E402

BUCKET = "floor_view"
SIZES = {"TaskDispatched": 1305, "TaskStarted": 331, "TaskCompleted": 581}  # payload bytes, layered run
VALUE = b'{"v":"' + b"x" * 300 + b'"}'  # a view entry


def _event(graph: str, i: int, topic: str, node: str, guard: bool, expected: int, version: int) -> Append:
    task = f"L{i // 100}-{i % 100}"
    aggregate = f"task.{graph}.{task}"
    body = {"type": topic, "event_id": f"{topic[4]}:{graph}/{task}:1", "graph_id": graph, "task_id": task}
    body.update(node_id=node, attempt=1, occurred_at="2026-12-07T12:00:00.000000Z", i=i)
    body["pad"] = "x" * max(0, SIZES[topic] - len(json.dumps(body)) - 9)
    headers = {S.HDR_ORIGINATOR_ID: aggregate, S.HDR_TOPIC: topic, S.HDR_ORIGINATOR_VERSION: str(version)}
    headers[S.HDR_MSG_ID] = body["event_id"]
    subject = f"{S.ROOT}.{aggregate}.{topic}.{node}"
    guard_filter = f"{S.ROOT}.{aggregate}.>" if guard else None
    return Append(subject, json.dumps(body).encode(), headers, expected if guard else None, guard_filter)


def node_of(i: int, agents: int) -> str:
    return f"node-{i % agents + 1}"


async def report(log: EventLog, a: argparse.Namespace, i: int, dispatch_seq: int) -> None:
    """An agent's appends for task ``i``: started (E=3) and completed, each guarded by the last."""
    node = node_of(i, a.agents)
    seq = dispatch_seq
    if a.e == 3:
        seq = await log.append(_event(a.graph, i, "TaskStarted", node, a.guard, seq, 2))
    await log.append(_event(a.graph, i, "TaskCompleted", node, a.guard, seq, 3))


async def writer(nc: Any, a: argparse.Namespace) -> dict[str, Any]:
    log = EventLog(nc)
    window = asyncio.Semaphore(a.agents * a.slots)
    reports: list[asyncio.Task[None]] = []

    async def alone(i: int, seq: int) -> None:
        async with window:
            await report(log, a, i, seq)

    for start in range(0, a.tasks, a.batch):
        ids = range(start, min(a.tasks, start + a.batch))
        items = [_event(a.graph, i, "TaskDispatched", node_of(i, a.agents), a.guard, 0, 1) for i in ids]
        seqs = await log.append_atomic(items)
        if a.alone:
            reports += [asyncio.create_task(alone(i, s)) for i, s in zip(ids, seqs, strict=True)]
    await asyncio.gather(*reports)
    return {"dispatched": a.tasks}


async def agent(nc: Any, a: argparse.Namespace, go: asyncio.Event) -> dict[str, Any]:
    """The agent's intake (node_agent/intake.py): pull requests kept open on its durable consumer
    for its free slots; a handler that acked asks for one more."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    node, durable = a.node, f"floor-{a.node}"
    expect = sum(1 for i in range(a.tasks) if node_of(i, a.agents) == node)
    config = ConsumerConfig(
        durable_name=durable,
        filter_subject=S.dispatch_filter(node),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=30,
        max_ack_pending=max(64, a.slots * 4),
    )
    await nc.jetstream().add_consumer(S.STREAM, config)
    log = EventLog(nc)
    decoder = msgspec.json.Decoder()
    inbox, next_subject = nc.new_inbox(), f"$JS.API.CONSUMER.MSG.NEXT.{S.STREAM}.{durable}"
    state = {"owed": 0, "running": 0, "done": 0}
    wake = asyncio.Event()
    handlers: set[asyncio.Task[None]] = set()

    async def ask() -> None:
        more = a.slots - state["running"] - state["owed"]
        if more > 0:
            state["owed"] += more
            await nc.publish(next_subject, json.dumps({"batch": more, "expires": 5_000_000_000}).encode(), inbox)

    async def run(msg: Any) -> None:
        await report(log, a, decoder.decode(msg.data)["i"], msg.metadata.sequence.stream)
        await msg.ack()
        state["running"] -= 1
        state["done"] += 1
        await ask()
        wake.set()

    async def receive(msg: Any) -> None:
        if msg.headers and msg.headers.get("Status"):  # a request ended (408, 409): what it still owed
            state["owed"] -= int(msg.headers.get("Nats-Pending-Messages", state["owed"]))
            wake.set()
            return
        state["owed"] -= 1
        state["running"] += 1
        t = asyncio.create_task(run(msg))
        handlers.add(t)
        t.add_done_callback(handlers.discard)

    await nc.subscribe(inbox, cb=receive)
    await ready_then(go)
    while state["done"] < expect:
        await ask()
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 1.0)
    return {"tasks": state["done"]}


async def follower(nc: Any, a: argparse.Namespace, go: asyncio.Event) -> dict[str, Any]:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from orchestrator.runtime.ordered import subscribe_ordered

    last = a.tasks * a.e
    decoder = msgspec.json.Decoder()
    inbox: list[Any] = []
    wake = asyncio.Event()
    kv = EventLog(nc, stream=f"KV_{BUCKET}") if a.kv else None
    writes = chunks = 0

    async def on_msg(msg: Any) -> None:
        inbox.append(msg)
        wake.set()

    async def subscribe() -> Any:
        if a.fetch == "push":
            return await subscribe_ordered(nc, f"{S.ROOT}.>", stream=S.STREAM, start_seq=1, cb=on_msg, unbounded=True)
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        return await nc.jetstream().pull_subscribe(f"{S.ROOT}.>", durable=None, stream=S.STREAM, config=config)

    sub = None if a.after else await subscribe()
    await ready_then(go)
    if a.after:  # catch up: read the stream only once it is whole
        while (await nc.jetstream().stream_info(S.STREAM)).state.last_seq < last:
            await asyncio.sleep(0.05)
        sub = await subscribe()
    seq = 0
    while seq < last:
        if a.fetch == "push":
            await wake.wait()
            wake.clear()
            msgs, inbox[:] = list(inbox), []
        else:
            try:
                msgs = await sub.fetch(256, timeout=1.0)
            except TimeoutError:
                continue
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            decoder.decode(msg.data)
        if kv is not None and msgs:
            writes, chunks = writes + await write_view(kv, msgs, seq, a.kv_per_task), chunks + 1
    return {"seq": seq, "kv_writes": writes, "chunks": chunks}


async def write_view(kv: EventLog, msgs: list[Any], seq: int, per_task: int) -> int:
    """The readiness view's least: each task's entry at completion (``per_task`` 2: at dispatch
    too; more: that many other keys of the task at completion, today's volume) and the
    checkpoint, one atomic batch per chunk; returns the messages written."""
    keys = []
    for msg in msgs:
        _, _, _, task, topic, _ = msg.subject.split(".")
        if topic == "TaskDispatched" and per_task > 1:
            keys.append(f"task.{task}")
        elif topic == "TaskCompleted":
            keys += [f"task.{task}", *(f"task.{task}.{k}" for k in range(per_task - 2))]
    items = [Append(f"$KV.{BUCKET}.{k}", VALUE) for k in dict.fromkeys(keys)]
    items.append(Append(f"$KV.{BUCKET}.{S.CHECKPOINT_KEY}", json.dumps({"seq": seq}).encode()))
    for i in range(0, len(items), S.MAX_ATOMIC_BATCH):
        await kv.append_atomic(items[i : i + S.MAX_ATOMIC_BATCH])
    return len(items)


async def kvwatch(nc: Any, a: argparse.Namespace, go: asyncio.Event) -> dict[str, Any]:
    from orchestrator.runtime.ordered import watch_bucket

    last, seen = a.tasks * a.e, 0
    decoder = msgspec.json.Decoder()
    watch = await watch_bucket(nc, BUCKET)
    await ready_then(go)
    async for entry in watch:
        if entry is None:
            continue
        seen += 1
        v = decoder.decode(entry.value)
        if entry.key == S.CHECKPOINT_KEY and v["seq"] >= last:
            break
    return {"values": seen}


async def ready_then(go: asyncio.Event) -> None:
    """Tell the parent this process is set up; return once it says go (start-up is not counted)."""
    print("ready", flush=True)
    await go.wait()


async def child(a: argparse.Namespace) -> None:
    nc = await connect(a.url, name=f"floor-{a.role}")
    go = asyncio.Event()

    async def lines() -> None:
        while (line := await asyncio.to_thread(sys.stdin.readline)) and line.strip() != "go":
            pass
        go.set()

    async def work() -> dict[str, Any]:
        if a.role == "writer":
            await ready_then(go)
            return await writer(nc, a)
        return await {"agent": agent, "follower": follower, "kvwatch": kvwatch}[a.role](nc, a, go)

    reader = asyncio.create_task(lines())
    try:
        out = await asyncio.wait_for(work(), a.timeout)
    except TimeoutError:
        print(f"failed: not through after {a.timeout:.0f} s", flush=True)
        return
    await reader
    print("done " + json.dumps(out), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "exit": the parent read our CPU
    await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", required=True, choices=("writer", "agent", "follower", "kvwatch"))
    ap.add_argument("--url", required=True)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--e", type=int, default=3, choices=(2, 3), help="events per task")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--graph", default="floor")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-guard", dest="guard", action="store_false")
    ap.add_argument("--batch", type=int, default=32, help="writer: dispatches per atomic append")
    ap.add_argument("--alone", action="store_true", help="writer: append started and completed too")
    ap.add_argument("--node", help="agent: its node")
    ap.add_argument("--fetch", default="push", choices=("push", "pull"), help="follower: how it reads")
    ap.add_argument("--kv", action="store_true", help="follower: write the view")
    ap.add_argument("--after", action="store_true", help="follower: start once every event is stored")
    ap.add_argument("--kv-per-task", type=int, default=1)
    asyncio.run(child(ap.parse_args()))


if __name__ == "__main__":
    main()

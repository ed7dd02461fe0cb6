"""What a projector stores in its view bucket, counted with the bucket stream's info: a batch of
events writes each key it changed once (and one checkpoint), and events the view ignores write no
key, only a checkpoint once the stream is quiet."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.writeside.eventlog import EventLog, event_append
from projections.fold import Fold
from projections.runner import PROJECTIONS, ProjectorRunner, read_checkpoint
from schemas import subjects as S
from tests.conftest import assert_eventually
from tests.unit.builders import dispatched, registered, started

TASKS = ("t1", "t2", "t3")


async def stored_messages(nc, bucket: str) -> int:
    return (await nc.jetstream().stream_info(f"KV_{bucket}")).state.last_seq


@pytest.mark.parametrize("name", ["confidence", "node-scores"])
async def test_a_batch_writes_each_changed_key_once_and_ignored_events_write_no_key(nats_server, nc, name):
    log = EventLog(nc)
    await log.ensure_stream()
    events = [registered("n1"), *(dispatched("g", t, "n1") for t in TASKS), *(started("g", t, "n1") for t in TASKS)]
    await log.append_atomic([event_append(e) for e in events])
    expected = Fold(PROJECTIONS[name])
    for seq, e in enumerate(events, 1):
        expected.apply_event(e, "", seq)
    keys = set(expected.snapshot())
    assert "node.n1" in keys and len(keys) < len(events)  # several events changed node.n1: one write of it

    p = PROJECTIONS[name]
    stop, ready = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(ProjectorRunner(nc, p).run(stop, ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        assert (await read_checkpoint(nc, p.bucket)).seq == len(events)
        assert await stored_messages(nc, p.bucket) == len(keys) + 1  # each key once, then the checkpoint

        before = await stored_messages(nc, p.bucket)
        await log.append_event(started("g", "t4", "n1"))  # neither view takes a start in
        head = await log.last_seq()

        async def checkpoint_at_head() -> bool:
            return (await read_checkpoint(nc, p.bucket)).seq == head

        await assert_eventually(checkpoint_at_head, timeout=10, message=f"{name} checkpoint reaches {head}")
        assert await stored_messages(nc, p.bucket) == before + 1  # the checkpoint alone
        kv = await nc.jetstream().key_value(p.bucket)
        assert (await kv.get("node.n1")).revision < (await kv.get(S.CHECKPOINT_KEY)).revision
    finally:
        stop.set()
        await runner

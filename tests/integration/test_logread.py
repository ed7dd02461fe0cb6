"""The fast whole-log reader on a real server: every message once, in order, the same bytes as
nats-py's ordered consumer, and the connection left working (requests during and after a read)."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.protocol.parser import Parser

from orchestrator.writeside.eventlog import Append, EventLog
from projections import logread
from schemas import codec
from schemas import events as ev
from schemas import subjects as S

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(nc, n: int) -> list[tuple[str, bytes]]:
    log = EventLog(nc)
    await log.ensure_stream()
    sent: list[tuple[str, bytes]] = []
    batch: list[Append] = []
    for i in range(n):
        e = ev.NodeObserved(
            event_id=f"o{i}",
            occurred_at=NOW,
            node_id=f"n{i % 7}",
            cpu_percent=i % 100,
            memory_percent=1,
            load1=0,
            running_tasks=0,
        )
        subject, data = S.route(e)[1], codec.encode(e)
        sent.append((subject, data))
        batch.append(Append(subject, data))
        if len(batch) == 500:
            await log.append_atomic(batch)
            batch = []
    if batch:
        await log.append_atomic(batch)
    return sent


async def test_reads_every_message_once_in_order_like_the_ordered_consumer(nc):
    sent = await _fill(nc, 3000)
    chunks = 0
    got: list[tuple[int, str, bytes]] = []
    async for chunk in logread.read_chunks(nc, 1, 3000):
        chunks += 1
        got += chunk
        # the connection keeps serving requests while the reader owns its subscription
        assert (await nc.jetstream().stream_info(S.STREAM)).state.last_seq == 3000
    assert [s for s, _, _ in got] == list(range(1, 3001))
    assert [(subject, data) for _, subject, data in got] == sent
    assert chunks < 3000  # handed over in bulk, not one by one
    assert type(nc._ps) is Parser  # the connection's own parser again

    portable = [m async for c in logread._read_ordered(nc, 1, 3000, stream=S.STREAM, idle_s=5) for m in c]
    assert portable == got


async def test_a_middle_range_and_an_empty_range(nc):
    sent = await _fill(nc, 1200)
    middle = await logread.read_all(nc, 401, 777)
    assert [s for s, _, _ in middle] == list(range(401, 778))
    assert [(subject, data) for _, subject, data in middle] == sent[400:777]
    assert await logread.read_all(nc, 10, 9) == []


async def test_its_consumer_goes_away_by_itself_after_a_read(nc):
    """A reader is not asked to delete its consumer (only admin may delete consumers when auth is
    on): the server drops the ephemeral consumer once nobody listens, within its inactive threshold."""
    import asyncio

    await _fill(nc, 300)
    assert len(await logread.read_all(nc, 1, 300)) == 300
    js = nc.jetstream()
    deadline = asyncio.get_running_loop().time() + logread._INACTIVE_S + 25.0
    while (await js.stream_info(S.STREAM)).state.consumer_count:
        assert asyncio.get_running_loop().time() < deadline, "the read's consumer is still there"
        await asyncio.sleep(0.25)

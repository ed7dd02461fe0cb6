"""The event log on a real server: guarded appends, atomic batches, duplicates, reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.errors import BatchTooLarge, ConcurrencyConflict, DuplicateAppend
from orchestrator.writeside.eventlog import EventLog, event_append
from schemas import events as ev

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def dispatched(node: str = "n1", attempt: int = 1) -> ev.TaskDispatched:
    return ev.TaskDispatched(
        event_id=f"d:{attempt}:{node}",
        occurred_at=NOW,
        graph_id="g",
        task_id="T-1",
        node_id=node,
        attempt=attempt,
        command="true",
    )


async def test_stream_creation_is_idempotent(nc):
    log = EventLog(nc)
    await log.ensure_stream()
    await log.ensure_stream()
    assert await log.last_seq() == 0


async def test_a_stale_writer_is_rejected(nc):
    log = EventLog(nc)
    await log.ensure_stream()
    first = await log.append_event(dispatched("n1"), version=1, expected_seq=0)
    with pytest.raises(ConcurrencyConflict):
        await log.append_event(dispatched("n2"), version=1, expected_seq=0)
    started = ev.TaskStarted(event_id="s", occurred_at=NOW, graph_id="g", task_id="T-1", node_id="n1", attempt=1)
    assert await log.append_event(started, version=2, expected_seq=first) == 2
    with pytest.raises(ConcurrencyConflict):  # the dispatch seq is no longer the task's last
        await log.append_event(dispatched("n1", 2), version=3, expected_seq=first)


async def test_same_msg_id_is_a_duplicate_not_a_second_write(nc):
    log = EventLog(nc)
    await log.ensure_stream()
    seq = await log.append_event(dispatched())
    with pytest.raises(DuplicateAppend) as info:
        await log.append_event(dispatched())
    assert info.value.seq == seq and await log.last_seq() == 1


async def test_atomic_batch_is_all_or_nothing(nc):
    log = EventLog(nc)
    await log.ensure_stream()
    completed = ev.TaskCompleted(
        event_id="c", occurred_at=NOW, graph_id="g", task_id="T-1", node_id="n1", attempt=1, outcome="success"
    )
    started = ev.TaskStarted(event_id="s", occurred_at=NOW, graph_id="g", task_id="T-1", node_id="n1", attempt=1)
    assert await log.append_atomic([event_append(dispatched(), expected_seq=0), event_append(started)]) == [1, 2]
    with pytest.raises(ConcurrencyConflict):
        await log.append_atomic([event_append(completed, expected_seq=1), event_append(dispatched("n9", 2))])
    assert await log.last_seq() == 2
    with pytest.raises(BatchTooLarge):
        await log.append_atomic([event_append(dispatched(f"n{i}")) for i in range(1001)])
    assert [s for s, _ in await log.read_events("ev.task.g.T-1.>")] == [1, 2]
    assert await log.last_seq("ev.task.g.T-1.>") == 2

"""The decider's appends on a real stream: a round's cache hits that need its earlier hits are
appended after them, and not at all when one of them lost its guard."""

from __future__ import annotations

from datetime import UTC, datetime

import nats

from orchestrator.decision.decide import Dispatch
from orchestrator.processes.decider import DeciderState, act
from orchestrator.writeside.eventlog import EventLog
from schemas.events import TaskCacheHit, TaskDispatched

T = datetime(2026, 1, 1, tzinfo=UTC)


def _hit(task: str, *needs: str, expected_seq: int = 0) -> Dispatch:
    e = TaskCacheHit(event_id=f"h:{task}", occurred_at=T, graph_id="g", task_id=task, key=f"k-{task}")
    return Dispatch(event=e, expected_seq=expected_seq, version=1, needs=tuple(("g", n) for n in needs))


def _dispatch(task: str) -> Dispatch:
    e = TaskDispatched(
        event_id=f"d:{task}", occurred_at=T, graph_id="g", task_id=task, node_id="n", attempt=1, command="x"
    )
    return Dispatch(event=e, expected_seq=0, version=1)


async def _appended(log: EventLog) -> list[str]:
    return [m.subject.split(".")[3] for m in await log.read("ev.task.>", limit=100)]


async def test_a_chain_of_hits_goes_in_dependency_order(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        round_ = [_hit("a"), _hit("b"), _dispatch("x"), _hit("ab", "a", "b"), _hit("top", "ab")]
        state = DeciderState()
        acked = await act(log, round_, state)
        assert len(acked) == 5 and state.dispatched == 5 and state.conflicts == 0
        order = await _appended(log)
        assert sorted(order[:3]) == ["a", "b", "x"] and order[3:] == ["ab", "top"]
    finally:
        await nc.close()


async def test_a_hit_whose_needed_hit_lost_its_guard_is_not_appended(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        # another decider won "a" first: the round's hit of a is stale, so ab (whose key a's
        # outputs completed) and top (which needs ab) are dropped; b and x go in
        round_ = [_hit("a", expected_seq=99), _hit("b"), _dispatch("x"), _hit("ab", "a", "b"), _hit("top", "ab")]
        state = DeciderState()
        await act(log, round_, state)
        assert sorted(await _appended(log)) == ["b", "x"]
        assert (state.dispatched, state.conflicts) == (2, 1)
    finally:
        await nc.close()


async def test_a_round_of_hits_alone_is_one_atomic_batch_in_level_order(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        round_ = [_hit("a"), _hit("ab", "a", "b"), _hit("b"), _hit("top", "ab")]  # as decide makes them
        state = DeciderState()
        acked = await act(log, round_, state)
        assert len(acked) == 4 and len(set(acked)) == 1  # acknowledged together: one batch
        assert await _appended(log) == ["a", "b", "ab", "top"]  # each level after the one it needs
    finally:
        await nc.close()


async def test_a_round_of_hits_with_a_stale_guard_falls_back_to_its_levels(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()
        round_ = [_hit("a", expected_seq=99), _hit("b"), _hit("ab", "a", "b"), _hit("c", "b")]
        state = DeciderState()
        await act(log, round_, state)
        assert await _appended(log) == ["b", "c"]  # the batch refused whole; then b, and c which needs only b
        assert (state.dispatched, state.conflicts) == (2, 1)
    finally:
        await nc.close()

"""How the agent holds a dispatch between its delivery and its ack, against a real nats-server.

A dispatch is delivered again when it was neither acked nor marked in progress for the ack wait:
that must happen when a delivery was lost on its way (a server died with it), and must not happen
to a dispatch the agent holds, whatever it is doing with it. When it does happen anyway (the
agent's loop stood still past the ack wait), the task still runs once.
"""

from __future__ import annotations

import asyncio
import time

from node_agent.agent import Agent
from node_agent.settings import AgentSettings
from orchestrator.writeside.eventlog import EventLog
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import assert_eventually
from tests.integration.agent_support import agent_running, dispatch, task_events, wait_event


async def consumer_state(nc, node: str = "n1"):
    return await nc.jetstream().consumer_info(S.STREAM, S.agent_consumer(node))


async def kinds(log: EventLog, graph: str, task: str) -> list[str]:
    return [type(e).__name__ for e in await task_events(log, graph, task)]


async def test_a_delivery_lost_on_its_way_comes_back_after_the_ack_wait(nc, nats_server, tmp_path):
    """The node's consumer hands the dispatch to a pull that never acks it, as when the server
    holding the delivery dies: it reaches the agent once the ack wait (5 s) has passed, not the
    30 s of JetStream's default."""
    log = EventLog(nc)
    await log.ensure_stream()
    psub = await Agent(nc, AgentSettings(node_id="n1", url=nats_server.url)).subscribe()
    await dispatch(log, "g", "lost", "n1", "echo ran")
    [dropped] = await psub.fetch(1, timeout=5)  # delivered, never acked: lost on its way
    assert dropped.metadata.num_delivered == 1
    await psub.unsubscribe()
    async with agent_running(nats_server.url, tmp_path):
        done = await wait_event(log, "g", "lost", ev.TaskCompleted, timeout=20)
    assert (done.outcome, done.attempt) == ("success", 1)
    assert await kinds(log, "g", "lost") == ["TaskDispatched", "TaskStarted", "TaskCompleted"]
    assert (await consumer_state(nc)).delivered.consumer_seq == 2  # one message, delivered twice


async def test_a_dispatch_slow_to_start_is_not_delivered_again(nc, nats_server, tmp_path, monkeypatch):
    """Recording the start takes three ack waits (a stream electing a leader answers that slowly):
    the agent marks the dispatch in progress from the moment it arrives, not only once the
    command runs, so JetStream never delivers it a second time."""
    real_append = EventLog.append_event

    async def slow_start(self, event, **kw):
        if isinstance(event, ev.TaskStarted):
            await asyncio.sleep(3.0)
        return await real_append(self, event, **kw)

    monkeypatch.setattr(EventLog, "append_event", slow_start)
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path, ack_wait_s=1.0):
        await dispatch(log, "g", "slow", "n1", "echo ran")
        done = await wait_event(log, "g", "slow", ev.TaskCompleted, timeout=30)
        assert done.outcome == "success"
        state = await assert_eventually(lambda: _settled(nc), timeout=10, message="the dispatch acked, nothing pending")
    assert state.num_redelivered == 0
    assert state.delivered.consumer_seq == 1
    assert await kinds(log, "g", "slow") == ["TaskDispatched", "TaskStarted", "TaskCompleted"]


async def test_a_dispatch_delivered_again_while_it_runs_runs_once(nc, nats_server, tmp_path):
    """The agent's loop stands still past the ack wait while a task runs (no beat goes out), so
    JetStream delivers the dispatch again: the running handler takes that delivery over and acks
    it; the command is not started twice and no loss is reported."""
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path, ack_wait_s=1.0):
        await dispatch(log, "g", "busy", "n1", "sleep 3")
        await wait_event(log, "g", "busy", ev.TaskStarted)
        time.sleep(2.5)  # the whole loop stalls (a long GC pause, a starved CPU): no beat, no ack
        done = await wait_event(log, "g", "busy", ev.TaskCompleted, timeout=30)
        state = await assert_eventually(lambda: _settled(nc), timeout=10, message="every delivery acked")
    assert done.outcome == "success"
    assert state.delivered.consumer_seq >= 2  # it was delivered again while it ran
    assert await kinds(log, "g", "busy") == ["TaskDispatched", "TaskStarted", "TaskCompleted"]


async def _settled(nc):
    state = await consumer_state(nc)
    return state if state.num_ack_pending == 0 and state.num_pending == 0 else None

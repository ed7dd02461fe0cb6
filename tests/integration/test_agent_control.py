"""Cancel, drain, fencing and lost starts, with an in-process agent running real subprocesses."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from orchestrator.writeside.eventlog import EventLog
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import assert_eventually
from tests.integration.agent_support import (
    agent_running,
    dispatch,
    dispatch_event,
    gone,
    niyantra,
    now,
    task_events,
    wait_event,
)

WAIT_FOR_RELEASE = 'echo $$ > pid; while [ ! -f release ]; do sleep 0.02; done; echo "finished $NIYANTRA_TASK_ID"'


def ws(tmp: Path, graph: str, task: str, node: str = "n1") -> Path:
    return tmp / node / graph / task


async def _pid(tmp: Path, graph: str, task: str) -> int:
    f = ws(tmp, graph, task) / "pid"
    await assert_eventually(lambda: f.exists() and f.read_text().strip(), message=f"{graph}/{task} running")
    return int(f.read_text())


def _rejected(caplog, graph: str, task: str) -> bool:
    return any(f"result of {graph}/{task}" in r.getMessage() and "rejected" in r.getMessage() for r in caplog.records)


async def _guard(log: EventLog, graph: str, task: str) -> int:
    return await log.last_seq(S.aggregate_filter(S.task_aggregate(graph, task)))


async def test_a_task_cancel_kills_the_run_and_its_late_result_is_fenced(nc, nats_server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="niyantra.agent")
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "c", "n1", "echo $$ > pid; exec sleep 60")
        pid = await _pid(tmp_path, "g", "c")
        cancel = ev.TaskCancelled(event_id="cancel:g:c", occurred_at=now(), graph_id="g", task_id="c", by="ana")
        await log.append_event(cancel, expected_seq=await _guard(log, "g", "c"))
        await assert_eventually(lambda: gone(pid), message="cancelled process killed")
        await assert_eventually(lambda: _rejected(caplog, "g", "c"), message="late result rejected")
    kinds = [type(e).__name__ for e in await task_events(log, "g", "c")]
    assert kinds == ["TaskDispatched", "TaskStarted", "TaskCancelled"]


async def test_a_graph_cancel_stops_its_running_tasks_and_nothing_else(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path, slots=3):
        await dispatch(log, "gc", "a", "n1", WAIT_FOR_RELEASE)
        await dispatch(log, "gc", "b", "n1", WAIT_FOR_RELEASE)
        await dispatch(log, "other", "x", "n1", WAIT_FOR_RELEASE)
        pids = [await _pid(tmp_path, g, t) for g, t in (("gc", "a"), ("gc", "b"), ("other", "x"))]
        cancel = ev.GraphCancelled(event_id="cancel:gc", occurred_at=now(), graph_id="gc", by="ana", reason="stop")
        await log.append_event(cancel)
        a = await wait_event(log, "gc", "a", ev.TaskCompleted)
        b = await wait_event(log, "gc", "b", ev.TaskCompleted)
        assert not gone(pids[2])
        (ws(tmp_path, "other", "x") / "release").touch()
        x = await wait_event(log, "other", "x", ev.TaskCompleted)
        await dispatch(log, "gc", "late", "n1", "echo should not run > ran")
        late = await wait_event(log, "gc", "late", ev.TaskCompleted)
    for done in (a, b):
        assert (done.outcome, done.retryable) == ("failure", False)
        assert done.error == "cancelled: graph gc cancelled by ana: stop"
    assert gone(pids[0]) and gone(pids[1])
    assert x.outcome == "success"
    assert late.error == "cancelled: graph gc was cancelled" and late.exit_code is None
    assert not (ws(tmp_path, "gc", "late") / "ran").exists()


async def test_drain_finishes_running_work_and_starts_no_more(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "t1", "n1", WAIT_FOR_RELEASE)
        await _pid(tmp_path, "g", "t1")
        out = await asyncio.to_thread(niyantra, "agent", "drain", "n1", "--by", "ana", url=nats_server.url)
        assert out.returncode == 0 and "drain of n1 requested by ana" in out.stdout, out.stderr

        async def draining() -> bool:
            return any(getattr(e, "draining", False) for _, e in await log.read_events("ev.node.n1.NodeObserved"))

        await assert_eventually(draining, message="an observation says draining")
        await dispatch(log, "g", "t2", "n1", "echo should not run > ran")
        lost = await wait_event(log, "g", "t2", ev.TaskLost)
        (ws(tmp_path, "g", "t1") / "release").touch()
        done = await wait_event(log, "g", "t1", ev.TaskCompleted)
    assert done.outcome == "success" and "finished t1" in done.output_tail
    assert lost.reason == "node draining: the dispatch was not started"
    assert [type(e).__name__ for e in await task_events(log, "g", "t2")] == ["TaskDispatched", "TaskLost"]
    bad = await asyncio.to_thread(niyantra, "agent", "drain", "no.dots", url=nats_server.url)
    assert bad.returncode == 2 and "node id" in bad.stderr


async def test_a_result_for_an_attempt_that_is_no_longer_current_is_rejected_and_dropped(
    nc, nats_server, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="niyantra.agent")
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "f", "n1", WAIT_FOR_RELEASE)
        started = await wait_event(log, "g", "f", ev.TaskStarted)
        # What the watchdog does when n1's lease runs out: the attempt is lost, a new one goes elsewhere.
        gone_event = ev.TaskLost(
            event_id="task-lost:g:f:1",
            occurred_at=now(),
            graph_id="g",
            task_id="f",
            node_id="n1",
            attempt=1,
            reason="x",
        )
        await log.append_event(gone_event, expected_seq=await _guard(log, "g", "f"))
        await dispatch(log, "g", "f", "n2", "true", attempt=2)
        (ws(tmp_path, "g", "f") / "release").touch()
        await assert_eventually(lambda: _rejected(caplog, "g", "f"), message="late result rejected")
    kinds = [(type(e).__name__, e.attempt) for e in await task_events(log, "g", "f")]
    assert kinds == [("TaskDispatched", 1), ("TaskStarted", 1), ("TaskLost", 1), ("TaskDispatched", 2)]
    assert started.attempt == 1


async def test_an_agent_stopped_mid_task_reports_it_lost_and_kills_it(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "s", "n1", WAIT_FOR_RELEASE)
        pid = await _pid(tmp_path, "g", "s")
    lost = await wait_event(log, "g", "s", ev.TaskLost)
    assert (lost.attempt, lost.node_id, lost.reason) == (1, "n1", "the agent stopped while the task ran")
    assert gone(pid)


async def test_a_start_left_by_a_dead_agent_is_reported_lost_on_restart_never_run_again(nc, nats_server, tmp_path):
    log = EventLog(nc)
    await log.ensure_stream()
    seq = await log.append_event(dispatch_event("g", "r", "n1", "echo ran > ran"), version=1, expected_seq=0)
    # An earlier incarnation of n1 started it and died (its dispatch was never acked).
    start = ev.TaskStarted(
        event_id="start:g:r:1", occurred_at=now(), graph_id="g", task_id="r", node_id="n1", attempt=1
    )
    await log.append_event(start, version=2, expected_seq=seq)
    async with agent_running(nats_server.url, tmp_path):
        lost = await wait_event(log, "g", "r", ev.TaskLost)
    assert lost.reason == "the agent stopped while the task ran (found when it restarted)"
    assert not (ws(tmp_path, "g", "r") / "ran").exists()
    kinds = [type(e).__name__ for e in await task_events(log, "g", "r")]
    assert kinds == ["TaskDispatched", "TaskStarted", "TaskLost"]


async def test_malformed_and_misaddressed_dispatches_are_skipped(nc, nats_server, tmp_path):
    log = EventLog(nc)
    await log.ensure_stream()
    await nc.jetstream().publish("ev.task.g.bad.TaskDispatched.n1", b"{not json")
    elsewhere = codec.encode(dispatch_event("g", "other", "n2", "echo ran > ran"))
    await nc.jetstream().publish("ev.task.g.other.TaskDispatched.n1", elsewhere)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "ok", "n1", "true")
        done = await wait_event(log, "g", "ok", ev.TaskCompleted)
    assert done.outcome == "success"
    assert [type(e).__name__ for e in await task_events(log, "g", "other")] == ["TaskDispatched"]
    assert not (ws(tmp_path, "g", "other") / "ran").exists()

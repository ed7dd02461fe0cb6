"""Lost work after a lease, end to end: agents as real OS processes (``niyantra agent``), with the
projectors, the decider and the watchdog in-process, on a real nats-server.

Leases are short here (observations every 0.5 s, lost after 4 missed) so each test takes seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from orchestrator.decision.decide import DeciderConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.processes.decider import run_decider
from orchestrator.processes.watchdog import WatchdogConfig, run_watchdog
from orchestrator.writeside.eventlog import EventLog
from projections.runner import PROJECTIONS, run_projector
from schemas import events as ev
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.agent_support import NIYANTRA, REPO, gone, task_events, wait_event
from tests.integration.harness import submit, task_status

OBSERVE_S = "0.5"


class AgentProcess:
    """One ``niyantra agent`` OS process; its log goes to a file."""

    def __init__(self, url: str, node: str, tmp: Path) -> None:
        self.node = node
        self.log_path = tmp / f"agent-{node}.log"
        self.ready = tmp / f"agent-{node}.ready"
        self.ready.unlink(missing_ok=True)
        args = ["agent", "--node", node, "--slots", "1", "--workdir", str(tmp / "work")]
        args += ["--observe-interval", OBSERVE_S, "--grace", "0.5", "--nats-url", url, "--ready-file", str(self.ready)]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([*NIYANTRA, *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@asynccontextmanager
async def cluster(url: str, tmp: Path, nodes: list[str]) -> AsyncIterator[dict[str, AgentProcess]]:
    """Projectors, a decider and a watchdog in-process; one agent process per node."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_projector(n, url, stop)) for n in sorted(PROJECTIONS)]
    tasks.append(asyncio.create_task(run_decider(url, stop, DeciderConfig(decider_id="decider"), tick=0.2)))
    config = WatchdogConfig(observe_interval_s=float(OBSERVE_S), missed=4, tick_s=0.2)
    tasks.append(asyncio.create_task(run_watchdog(url, stop, config)))
    agents = {n: AgentProcess(url, n, tmp) for n in nodes}
    try:
        for a in agents.values():
            await assert_eventually(a.ready.exists, timeout=30, message=f"agent {a.node} ready")
        yield agents
    finally:
        for a in agents.values():
            a.stop()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def _graph(graph: str, command: str) -> GraphSpec:
    return GraphSpec(id=graph, title="", tasks=(TaskSpec(id="t", command=command, max_attempts=1),))


@pytest.mark.timeout(120)
async def test_an_agent_killed_mid_task_is_lost_after_its_lease_and_the_task_succeeds_exactly_once(
    nc, nats_server, tmp_path
):
    log = EventLog(nc)
    marks = tmp_path / "marks"
    marks.mkdir()
    command = (
        f'echo "$NIYANTRA_ATTEMPT" >> {marks}/ran; echo $$ > {marks}/pid.$NIYANTRA_ATTEMPT; '
        f'if [ "$NIYANTRA_ATTEMPT" = 1 ]; then exec sleep 60; fi; echo "$NIYANTRA_ATTEMPT" >> {marks}/done'
    )
    async with cluster(nats_server.url, tmp_path, ["n1", "n2"]) as agents:
        await submit(nats_server.url, _graph("gk", command))
        first = await wait_event(log, "gk", "t", ev.TaskStarted, attempt=1)
        pid = await assert_eventually(lambda: (marks / "pid.1").exists() and int((marks / "pid.1").read_text()))
        agents[first.node_id].proc.kill()  # SIGKILL: the agent cannot report anything
        await assert_eventually(lambda: gone(pid), message="the task died with its agent")
        lost = await wait_event(log, "gk", "t", ev.TaskLost, timeout=30, attempt=1)
        done = await wait_event(log, "gk", "t", ev.TaskCompleted, timeout=30)
        await assert_eventually(lambda: task_status(nats_server.url, "gk", "t"), message="status")
    assert lost.node_id == first.node_id and "lost" in lost.reason
    assert (done.outcome, done.attempt) == ("success", 2) and done.node_id != first.node_id
    events = await task_events(log, "gk", "t")
    assert [type(e).__name__ for e in events].count("TaskCompleted") == 1
    assert (marks / "ran").read_text().split() == ["1", "2"]
    assert (marks / "done").read_text().split() == ["2"]
    assert (await task_status(nats_server.url, "gk", "t"))["state"] == "succeeded"


@pytest.mark.timeout(120)
async def test_an_agent_paused_past_its_lease_then_resumed_has_its_late_result_rejected(nc, nats_server, tmp_path):
    log = EventLog(nc)
    marks = tmp_path / "marks"
    marks.mkdir()
    command = (
        f'echo "$NIYANTRA_ATTEMPT" >> {marks}/ran; '
        f'while [ "$NIYANTRA_ATTEMPT" = 1 ] && [ ! -f {marks}/release ]; do sleep 0.02; done; echo finished'
    )
    async with cluster(nats_server.url, tmp_path, ["n1", "n2"]) as agents:
        await submit(nats_server.url, _graph("gs", command))
        first = await wait_event(log, "gs", "t", ev.TaskStarted, attempt=1)
        paused = agents[first.node_id]
        os.kill(paused.proc.pid, signal.SIGSTOP)
        try:
            await wait_event(log, "gs", "t", ev.TaskLost, timeout=30, attempt=1)
            second = await wait_event(log, "gs", "t", ev.TaskCompleted, timeout=30)
            (marks / "release").touch()  # attempt 1's process (not paused: its own group) now finishes
        finally:
            os.kill(paused.proc.pid, signal.SIGCONT)
        await assert_eventually(
            lambda: "attempt 1 (run) rejected, dropped" in paused.log(), timeout=30, message="late result rejected"
        )
    assert (second.outcome, second.attempt) == ("success", 2) and second.node_id != first.node_id
    completed = [e for e in await task_events(log, "gs", "t") if isinstance(e, ev.TaskCompleted)]
    assert [(e.attempt, e.outcome) for e in completed] == [(2, "success")]
    assert (await task_status(nats_server.url, "gs", "t"))["state"] == "succeeded"


@pytest.mark.timeout(180)
async def test_a_task_that_kills_its_agent_three_times_ends_quarantined(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with cluster(nats_server.url, tmp_path, ["n1", "n2", "n3"]) as agents:
        await submit(nats_server.url, _graph("gq", "kill -9 $PPID; sleep 5"))

        async def quarantined() -> dict:
            t = await task_status(nats_server.url, "gq", "t")
            return t if t.get("state") == "failed" else {}

        task = await assert_eventually(quarantined, timeout=90, message="quarantined")
        assert all(a.proc.poll() is not None for a in agents.values())  # each run killed its agent
    events = await task_events(log, "gq", "t")
    lost = [e for e in events if isinstance(e, ev.TaskLost)]
    assert [e.attempt for e in lost] == [1, 2, 3]
    assert len({e.node_id for e in lost}) == 3
    assert not [e for e in events if isinstance(e, ev.TaskCompleted)]
    assert "quarantined" in task["reason"] and "lost 3 times" in task["reason"]

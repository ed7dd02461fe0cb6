"""An agent SIGKILLed while it stores a task's outputs: no event names a half-written blob, and the
task runs again on another node (the watchdog's TaskLost). Agents are real OS processes
(``niyantra agent``), each with a workdir of its own; projectors, decider and watchdog in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import nats

from node_agent.artifacts.store import ArtifactStore
from orchestrator.decision.decide import DeciderConfig
from orchestrator.graphs.graphfile import load_graph
from orchestrator.processes.decider import run_decider
from orchestrator.processes.watchdog import WatchdogConfig, run_watchdog
from orchestrator.runtime.natsserver import RunningServer
from orchestrator.writeside.eventlog import EventLog
from projections.runner import PROJECTIONS, run_projector
from schemas import events as ev
from schemas import records as rec
from tests.conftest import assert_eventually
from tests.integration.agent_support import NIYANTRA, REPO, task_events
from tests.integration.harness import submit, task_status

OBSERVE_S = 0.5
BIG_MIB = 128  # an output big enough that storing it takes many chunk writes


def _agent(url: str, node: str, tmp: Path) -> subprocess.Popen[bytes]:
    args = ["agent", "--node", node, "--slots", "1", "--workdir", str(tmp / f"machine-{node}")]
    args += ["--observe-interval", str(OBSERVE_S), "--grace", "0.5", "--nats-url", url]
    args += ["--ready-file", str(tmp / f"{node}.ready")]
    with open(tmp / f"agent-{node}.log", "ab") as out:
        return subprocess.Popen([*NIYANTRA, *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


async def _chunk_messages(nc: nats.NATS, store: ArtifactStore) -> int:
    info = await nc.jetstream().stream_info(store.stream)
    return int(info.state.messages)


async def _events(nc: nats.NATS, task: str) -> list[object]:
    return await task_events(EventLog(nc), "big", task)


async def test_an_agent_killed_while_storing_outputs_leaves_no_event_naming_a_partial_blob(
    nats_server: RunningServer, tmp_path: Path
) -> None:
    url = nats_server.url
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "seed.txt").write_text("seed\n")
    graph = tmp_path / "big.toml"
    graph.write_text(
        '[graph]\nid = "big"\nsource = "repo"\n[[tasks]]\nid = "blob"\n'
        f'command = "head -c {BIG_MIB}M /dev/urandom > big.bin"\noutputs = ["big.bin"]\n'
    )
    spec = load_graph(graph, hash_source=True)
    stop = asyncio.Event()
    loops = [asyncio.create_task(run_projector(n, url, stop)) for n in sorted(PROJECTIONS)]
    loops.append(asyncio.create_task(run_decider(url, stop, DeciderConfig(decider_id="decider"), tick=0.2)))
    watchdog = WatchdogConfig(observe_interval_s=OBSERVE_S, missed=4, tick_s=0.2)
    loops.append(asyncio.create_task(run_watchdog(url, stop, watchdog)))
    agents = {n: _agent(url, n, tmp_path) for n in ("node-1", "node-2")}
    nc = await nats.connect(url)
    try:
        for n in agents:
            await assert_eventually((tmp_path / f"{n}.ready").exists, timeout=30, message=f"agent {n} ready")
        await submit(url, spec)
        store = ArtifactStore(nc)
        baseline = await _chunk_messages(nc, store)  # the source's blobs and manifest

        async def storing() -> str:
            started = [e for e in await _events(nc, "blob") if isinstance(e, ev.TaskStarted)]
            more = await _chunk_messages(nc, store) > baseline + 4
            return started[0].node_id if started and more else ""

        victim = await assert_eventually(storing, timeout=60, interval=0.005, message="outputs being stored")
        os.kill(agents[victim].pid, signal.SIGKILL)
        agents[victim].wait(10)
        killed_at_completion = [e for e in await _events(nc, "blob") if isinstance(e, ev.TaskCompleted)]
        row = await assert_eventually(
            lambda: _finished(url), timeout=90, message="blob run again elsewhere and finished"
        )
        events = await _events(nc, "blob")
        done = [e for e in events if isinstance(e, ev.TaskCompleted)]
        lost = [e for e in events if isinstance(e, ev.TaskLost)]
        blobs = {b.digest: b for b in await store.blobs()}
        fetched = await store.fetch(done[-1].outputs[0].digest, tmp_path / "fetched.bin") if done else 0
    finally:
        for p in agents.values():
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        await nc.close()
    assert not killed_at_completion  # killed before its completion was appended
    assert row["state"] == "succeeded" and row["node"] != victim
    assert [(e.node_id, e.attempt) for e in lost] == [(victim, 1)]
    assert [(e.node_id, e.attempt, e.outcome) for e in done] == [(row["node"], 2, "success")]
    # every output any completion names is in the store, whole and verified
    for e in done:
        for o in e.outputs:
            assert o.digest in blobs and blobs[o.digest].intact and blobs[o.digest].size == o.size
    assert fetched == BIG_MIB * 1024 * 1024


async def _finished(url: str) -> dict:
    row = await task_status(url, "big", "blob")
    return row if row.get("state") in rec.TERMINAL_STATES else {}

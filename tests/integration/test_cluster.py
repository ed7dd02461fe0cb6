"""`niyantra up --cluster 3`: a run survives SIGKILL of one of three servers, and nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter

import nats
import nats.errors
import psutil
import pytest

from orchestrator.cli.ops import _all_events
from orchestrator.reports.queries import read_status
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, read_manifest, restart_server, up
from orchestrator.writeside.api import Graph
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import assert_eventually

pytestmark = pytest.mark.timeout(300)


def local_events(http_port: int) -> tuple[int, int] | None:
    """(messages, last_seq) of this server's own replica of EVENTS, from its monitoring port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/jsz?streams=true", timeout=2) as r:
            jsz = json.loads(r.read())
    except OSError:
        return None
    for account in jsz.get("account_details") or []:
        for s in account.get("stream_detail") or []:
            if s["name"] == S.STREAM:
                return int(s["state"]["messages"]), int(s["state"]["last_seq"])
    return None


def http_port_of(cmd: list[str]) -> int:
    return int(cmd[cmd.index("-m") + 1])


async def _quiet(_e: Exception) -> None:
    """A refused connect to the killed server is expected here: not a traceback per poll."""


async def succeeded(url: str) -> int | None:
    """Tasks of the graph that succeeded; None while the cluster elects new leaders after the kill."""
    try:
        nc = await nats.connect(servers=url.split(","), connect_timeout=2, allow_reconnect=False, error_cb=_quiet)
    except (OSError, nats.errors.Error):
        return None
    try:
        report = await read_status(nc, "chaos")
    except (OSError, nats.errors.Error):
        return None
    finally:
        await nc.close()
    return sum(1 for t in report.tasks if t["state"] == "succeeded")


def test_run_survives_killing_one_of_three_servers(tmp_path):
    """Four chains of 15 short tasks, and a task held until the test releases it, so the run
    cannot end before the killed server is back (however late the status shows the progress)."""
    data = tmp_path / "inst"
    release = tmp_path / "release"
    g = Graph("chaos")
    for i in range(60):
        g.task(f"t{i:02d}", "sleep 0.1", depends_on=[f"t{i - 4:02d}"] if i >= 4 else [])
    g.task("held", f"while [ ! -e {release} ]; do sleep 0.05; done")
    g.task("last", "true", depends_on=["held", "t59"])
    tasks = [*(f"t{i:02d}" for i in range(60)), "held", "last"]
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=2, cluster=3))
        servers = {p.name: p for p in m.processes if p.name.startswith("nats-server")}
        assert sorted(servers) == ["nats-server-1", "nats-server-2", "nats-server-3"]
        replicas, leader = asyncio.run(stream_replicas(m.url))
        assert replicas == {
            s: 3 for s in (S.STREAM, S.LOG_STREAM, S.ARTIFACT_STREAM, *(f"KV_{b}" for b in S.VIEW_BUCKETS))
        }
        victim = f"nats-server-{leader.rsplit('-', 1)[1]}"  # the EVENTS leader: the hardest one to lose

        g.submit(m.url)
        at_kill = wait_for(lambda: _at_least(m.url, 5), timeout=30, message="progress before the kill")
        os.kill(servers[victim].pid, signal.SIGKILL)
        psutil.Process(servers[victim].pid).wait(10)
        # more than the 4 slots could have had running at the kill: work decided after it finished
        wait_for(lambda: _at_least(m.url, at_kill + 5), timeout=60, message="progress with 2 of 3")
        restart_server(data, victim)
        release.touch()
        wait_for(lambda: _at_least(m.url, len(tasks)), timeout=60, message="every task succeeded")

        events, malformed = asyncio.run(_all_events(m.url))
        assert malformed == 0
        done = Counter(e.task_id for _, e in events if isinstance(e, ev.TaskCompleted))
        assert done == Counter({t: 1 for t in tasks})
        assert all(e.outcome == "success" for _, e in events if isinstance(e, ev.TaskCompleted))
        last = events[-1][0]
        ports = [http_port_of(p.cmd) for p in read_manifest(data).processes if p.name.startswith("nats-server")]

        seen: list[tuple[int, int] | None] = []

        def replicas_hold_the_log() -> bool:
            """Each replica holds the log through ``last`` without a gap (messages == last_seq: nothing
            acknowledged lost, nothing deleted). Not 'the same counts at one instant': agents keep
            appending NodeObserved, so three polls in turn can differ however healthy the cluster."""
            seen[:] = [local_events(port) for port in ports]
            return all(c is not None and c[1] >= last and c[0] == c[1] for c in seen)

        try:
            wait_for(replicas_hold_the_log, timeout=60, message=f"every replica holds seq 1..{last}")
        except AssertionError as e:
            raise AssertionError(f"{e}; (messages, last_seq) per replica: {seen}") from None
        verify = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.main", "verify", "--json", "--nats-url", m.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(verify.stdout)["violations"] == [], verify.stdout + verify.stderr
    finally:
        down(data)


async def _at_least(url: str, n: int) -> int:
    """How many succeeded, when at least ``n`` (0 otherwise)."""
    done = await succeeded(url)
    return done if done is not None and done >= n else 0


def wait_for(fn, *, timeout: float, message: str):
    return asyncio.run(assert_eventually(fn, timeout=timeout, message=message))


async def stream_replicas(url: str) -> tuple[dict[str, int], str]:
    """Each stream's replica count, and the name of the EVENTS stream's leader."""
    nc = await nats.connect(servers=url.split(","))
    try:
        js = nc.jetstream()
        streams = (S.STREAM, S.LOG_STREAM, S.ARTIFACT_STREAM, *(f"KV_{b}" for b in S.VIEW_BUCKETS))
        infos = [await js.stream_info(s) for s in streams]
    finally:
        await nc.close()
    return {i.config.name: i.config.num_replicas for i in infos}, infos[0].cluster.leader

"""The decider as separate processes: many deciders never double-dispatch; unschedulable is said."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from orchestrator.decision.decide import DeciderConfig
from orchestrator.writeside.eventlog import EventLog
from schemas import events as ev
from schemas import records as rec
from tests.conftest import assert_eventually
from tests.integration.harness import layered_graph, subject_counts, submit, system
from tests.integration.test_pipeline import _all_done


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.timeout(240)
async def test_two_decider_processes_over_a_thousand_tasks_dispatch_each_attempt_once(nats_server, tmp_path):
    url = ["--nats-url", nats_server.url]
    spec = layered_graph("big", layers=10, width=100, command="true")
    procs = [start("projector", "readiness", *url), start("projector", "node-scores", *url)]
    procs += [start("decider", "--decider-id", f"d{i}", *url) for i in (1, 2)]
    procs += [
        start("agent", "--node", f"n{i}", "--slots", "8", "--workdir", str(tmp_path / f"w{i}"), *url) for i in (1, 2, 3)
    ]
    try:
        await submit(nats_server.url, spec)
        await assert_eventually(
            lambda: _all_done(nats_server.url, "big"), timeout=200, interval=0.5, message="1,000 tasks done"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    counts = await subject_counts(nats_server.url, "ev.task.big.>")
    dispatched = Counter({k: v for k, v in counts.items() if k.endswith("/TaskDispatched")})
    assert len(dispatched) == 1000 and set(dispatched.values()) == {1}
    deciders = await _deciders(nats_server.url)
    assert set(deciders) <= {"d1", "d2"} and sum(deciders.values()) == 1000


async def _deciders(url: str) -> Counter[str]:
    import nats

    nc = await nats.connect(url)
    try:
        events = await EventLog(nc).read_events("ev.task.big.*.TaskDispatched.*")
    finally:
        await nc.close()
    return Counter(e.decider_id for _, e in events if isinstance(e, ev.TaskDispatched))


async def test_a_task_no_node_can_take_is_reported_unschedulable_with_the_reason(nats_server, tmp_path):
    from orchestrator.graphs.validation import GraphSpec

    spec = GraphSpec(id="u", title="", tasks=(rec.TaskSpec(id="mac", command="true", labels={"os": "macos"}),))
    config = DeciderConfig(unschedulable_after_s=0.5)
    async with system(nats_server.url, tmp_path / "work", agents=1, decider_config=config):
        await submit(nats_server.url, spec)

        async def reported() -> list:
            import nats

            nc = await nats.connect(nats_server.url)
            try:
                return await EventLog(nc).read_events("ev.unschedulable.u.mac.>")
            finally:
                await nc.close()

        [(_, u)] = await assert_eventually(reported, timeout=20, message="Unschedulable appended")
    assert isinstance(u, ev.Unschedulable) and u.reason == "no live node with label os=macos"

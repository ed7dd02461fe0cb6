"""Adaptive timeouts on a real system: after ten fast runs of a type, a hung task of that type is
dispatched with the learned timeout and its agent kills it there (it is submitted once the
node-scores view shows the ten runs: that view's projector runs apart from readiness's) (the graph fixes no timeout, so
without the rule it would run on), and ``replay --check`` re-derives every dispatch, timeouts too."""

from __future__ import annotations

import nats

from orchestrator.cli.replay import read_messages
from orchestrator.cli.why import read_views
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.timeouts import TimeoutConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.replay.check import check
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from tests.conftest import assert_eventually
from tests.integration.harness import submit, system

CONFIG = DeciderConfig(timeouts=TimeoutConfig(min_samples=10, floor_s=1.5, ceiling_s=3600.0))


async def test_a_hung_task_is_killed_at_its_types_learned_timeout(nats_server, tmp_path):
    url = nats_server.url
    fast = tuple(rec.TaskSpec(id=f"fast-{i}", type="quick", command="true") for i in range(10))
    hung = rec.TaskSpec(id="hung", type="quick", command="sleep 300")
    async with system(url, tmp_path / "work", agents=1, slots=2, decider_config=CONFIG):
        await submit(url, GraphSpec(id="g", title="", tasks=fast))

        async def learned() -> bool:  # the node-scores view (a projector of its own) has all ten runs
            nc = await nats.connect(url)
            try:
                est = (await read_views(nc)).types.get("quick")
            finally:
                await nc.close()
            return est is not None and est.duration.n == 10

        await assert_eventually(learned, timeout=30, message="ten runs of type quick learned")
        await submit(url, GraphSpec(id="h", title="", tasks=(hung,)))

        async def ended() -> list[object] | None:
            events = [codec.decode(m.data) for m in await read_messages(url)]
            done = [e for e in events if isinstance(e, ev.TaskCompleted) and e.task_id == "hung"]
            return events if done else None

        events = await assert_eventually(ended, timeout=60, message="the hung task ended")
    dispatched = {e.task_id: e for e in events if isinstance(e, ev.TaskDispatched)}
    assert len(dispatched) == 11
    assert {dispatched[t.id].timeout_s for t in fast} == {None}  # fewer than ten runs: nothing learned yet
    d = dispatched["hung"]
    assert d.timeout_s == 1.5 and "type quick" in d.timeout_rule and "over 10 runs" in d.timeout_rule
    [done] = [e for e in events if isinstance(e, ev.TaskCompleted) and e.task_id == "hung"]
    assert done.outcome == "failure" and done.error.startswith("timed out after 1.5")
    assert done.duration_s < 30  # killed at the learned 1.5 s, not left to sleep 300 s
    report = check(await read_messages(url), base=CONFIG)
    assert report["mismatches"] == [] and report["decisions"] == 11, report["mismatches"][:2]

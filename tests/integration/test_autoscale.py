"""`niyantra up --autoscale` on a real instance (separate processes): queued work makes the
decider propose a scale-up, the hook's local form starts a second agent that then runs work;
once both are idle a scale-down proposal drains and stops one of them (one is kept), and
``replay --check`` re-derives every proposal and dispatch."""

from __future__ import annotations

import tomllib

from orchestrator.cli.replay import read_messages
from orchestrator.decision.config import decider_config
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.replay.check import check
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.scaleconfig import DECIDER_TOML, AutoscaleSettings
from orchestrator.runtime.supervisor import UpSettings, down, is_ours, read_manifest, up
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.harness import submit, task_status


def _agents(data) -> list[str]:
    m = read_manifest(data)
    return sorted(p.name for p in (m.processes if m else []) if p.name.startswith("agent-") and is_ours(p))


async def test_up_autoscale_starts_an_agent_for_queued_work_and_stops_an_idle_one(tmp_path):
    data, go = tmp_path / "inst", tmp_path / "go"
    mine = tmp_path / "decider.toml"  # the user's own decider config: its thresholds are kept
    mine.write_text("[decider.scaling]\nqueued_after_s = 1.0\nidle_after_s = 2.0\n")
    scaling = AutoscaleSettings(max_agents=2, min_agents=1, slots=1)
    wait = f"until [ -e '{go}' ]; do sleep 0.05; done"
    spec = GraphSpec(id="q", title="queued", tasks=tuple(TaskSpec(id=f"t{i}", command=wait) for i in range(3)))
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=1, slots=1, decider_config=mine, autoscale=scaling))
        assert _agents(data) == ["agent-node-1"]
        await submit(m.url, spec)
        await assert_eventually(lambda: _agents(data) == ["agent-node-1", "agent-node-2"], timeout=60,
                                message="the scale-up proposal started agent node-2")  # fmt: skip

        async def on_node_2() -> list[str]:
            rows = [await task_status(m.url, "q", t) for t in ("t0", "t1", "t2")]
            return [r["id"] for r in rows if r.get("node") == "node-2" and r.get("state") in ("dispatched", "running")]

        await assert_eventually(on_node_2, timeout=30, message="node-2 runs a queued task")
        go.touch()

        async def all_done() -> bool:
            return all([(await task_status(m.url, "q", t)).get("state") == "succeeded" for t in ("t0", "t1", "t2")])

        await assert_eventually(all_done, timeout=30, message="every task succeeded")
        await assert_eventually(lambda: len(_agents(data)) == 1, timeout=60,
                                message="an idle agent was drained and stopped")  # fmt: skip
        messages = await read_messages(m.url)
    finally:
        down(data)
    events = [codec.decode(x.data) for x in messages]
    [up_] = [e for e in events if isinstance(e, act.NodeScaleUpProposed)]
    assert up_.start and up_.needs[0].tasks == 2 and up_.nodes == 2  # two would help; --max-agents 2 allowed one
    assert any(isinstance(e, ev.TaskCompleted) and e.node_id == "node-2" and e.outcome == "success" for e in events)
    drains = [e for e in events if isinstance(e, ev.NodeDrainRequested)]
    downs = {e.node_id for e in events if isinstance(e, act.NodeScaleDownProposed)}
    assert [d.by for d in drains] == ["autoscale"] and drains[0].node_id in downs
    config = decider_config(tomllib.loads((data / "run" / DECIDER_TOML).read_text())["decider"])
    assert config.scaling.queued_after_s == 1.0 and config.scaling.enabled and "autoscale" in config.scaling.command
    report = check(messages, base=config)
    assert report["mismatches"] == [] and report["decisions"] == report["reproduced"] >= 3 + 1 + len(downs)

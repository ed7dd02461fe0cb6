"""Scale up on sustained queueing on a real system (nats-server, projectors, a decider, one
agent of one slot): more ready tasks than slots for longer than ``queued_after_s`` gives one
`NodeScaleUpProposed`, the ``[decider.scaling] command`` hook receives it as JSON, and
``replay --check`` re-derives it with the dispatches."""

from __future__ import annotations

import json

from orchestrator.cli.replay import read_messages
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scaling import ScalingConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.replay.check import check
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.harness import submit, system, task_status


async def test_queued_work_gets_one_scale_up_proposal_and_the_hook_receives_it(nats_server, tmp_path):
    url, got, go = nats_server.url, tmp_path / "proposal.json", tmp_path / "go"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ncat > '{got}.part' && mv '{got}.part' '{got}'\n")
    hook.chmod(0o755)
    scaling = ScalingConfig(enabled=True, queued_after_s=1.0, idle_after_s=1e6, command=str(hook))
    config = DeciderConfig(scaling=scaling)
    wait = f"until [ -e '{go}' ]; do sleep 0.05; done"  # each task runs until the test lets it end
    spec = GraphSpec(id="q", title="queued", tasks=tuple(TaskSpec(id=f"t{i}", command=wait) for i in range(3)))
    async with system(url, tmp_path / "work", agents=1, slots=1, decider_config=config):
        await submit(url, spec)

        async def received() -> dict | None:
            return json.loads(got.read_text()) if got.exists() else None

        said = await assert_eventually(received, timeout=30, message="the hook received the proposal")
        go.touch()
        for t in ("t0", "t1", "t2"):
            await assert_eventually(lambda t=t: _state(url, t), timeout=30, message=f"{t} succeeded after the proposal")
    events = [codec.decode(m.data) for m in await read_messages(url)]
    [proposal] = [e for e in events if isinstance(e, act.NodeScaleUpProposed)]  # once per queueing episode
    assert said["type"] == "NodeScaleUpProposed" and said["event_id"] == proposal.event_id
    assert said["needs"] == [{"labels": {}, "tasks": 2, "nodes": 2, "slots_per_node": 1, "live": 1}]
    assert said["queued"] == 2 and said["nodes"] == 2 and said["start"] is True and said["queued_s"] >= 1.0
    assert "beyond the free slots of the live nodes that match them" in said["reason"]
    assert sum(isinstance(e, ev.TaskDispatched) for e in events) == 3
    report = check(await read_messages(url), base=config)
    assert report["mismatches"] == [] and report["decisions"] == report["reproduced"] == 4  # 3 dispatches + 1


async def _state(url: str, task: str) -> bool:
    return (await task_status(url, "q", task)).get("state") == "succeeded"

"""Scale idle nodes down on a real system (nats-server, projectors, a decider, an agent): the
idle agent gets one `NodeScaleDownProposed`, the ``[decider.scaling] command`` hook receives it
as JSON on stdin, ``replay --check`` re-derives it; a failing hook is recorded as an alert."""

from __future__ import annotations

import json

from orchestrator.cli.replay import read_messages
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scaling import ScalingConfig
from orchestrator.replay.check import check
from schemas import actions as act
from schemas import codec
from tests.conftest import assert_eventually
from tests.integration.harness import system


async def _events(url: str) -> list[object]:
    return [codec.decode(m.data) for m in await read_messages(url)]


async def test_an_idle_node_gets_a_scale_down_proposal_and_the_hook_receives_it(nats_server, tmp_path):
    url, got = nats_server.url, tmp_path / "proposal.json"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ncat > '{got}.part' && mv '{got}.part' '{got}'\n")
    hook.chmod(0o755)
    config = DeciderConfig(scaling=ScalingConfig(enabled=True, idle_after_s=1.0, command=str(hook)))
    async with system(url, tmp_path / "work", agents=1, slots=1, decider_config=config):

        async def received() -> dict | None:
            return json.loads(got.read_text()) if got.exists() else None

        said = await assert_eventually(received, timeout=30, message="the hook received the proposal")
    [proposal] = [e for e in await _events(url) if isinstance(e, act.NodeScaleDownProposed)]  # once per episode
    assert said["type"] == "NodeScaleDownProposed" and said["node_id"] == proposal.node_id
    assert said["event_id"] == proposal.event_id and said["idle_s"] >= 1.0 and said["drain"] is True
    assert "no ready task matches its labels" in said["reason"]
    report = check(await read_messages(url), base=config)
    assert report["mismatches"] == [] and report["decisions"] == report["reproduced"] == 1


async def test_a_failing_hook_is_recorded_as_an_alert(nats_server, tmp_path):
    url = nats_server.url
    config = DeciderConfig(scaling=ScalingConfig(enabled=True, idle_after_s=1.0, command="echo no fleet >&2; exit 3"))
    async with system(url, tmp_path / "work", agents=1, slots=1, decider_config=config):

        async def alerted() -> list[act.Alert]:
            return [e for e in await _events(url) if isinstance(e, act.Alert) and e.kind == "scaling-hook"]

        [alert] = await assert_eventually(alerted, timeout=30, message="the hook's failure recorded")
    assert "exit status 3: no fleet" in alert.message and alert.causation_id.startswith("scale-down:")

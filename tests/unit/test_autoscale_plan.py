"""`up --autoscale`'s pure parts (`orchestrator.runtime.autoscale`, `orchestrator.runtime.scaleconfig`):
which agents a proposal starts or stops, and the decider config that names the hook."""

from __future__ import annotations

import tomllib

import pytest

from orchestrator.decision.config import decider_config
from orchestrator.runtime.autoscale import plan_down, plan_up
from orchestrator.runtime.scaleconfig import AutoscaleSettings, decider_toml

UP = {"type": "NodeScaleUpProposed", "start": True, "nodes": 3,
      "needs": [{"labels": {}, "nodes": 2}, {"labels": {"gpu": "1"}, "nodes": 1}]}  # fmt: skip


@pytest.mark.parametrize(
    ("proposal", "running", "most", "started"),
    [
        (UP, 1, 6, [{}, {}, {"gpu": "1"}]),  # each need's nodes, with its labels
        (UP, 1, 3, [{}, {}]),  # capped by --max-agents
        (UP, 3, 3, []),  # at the cap already
        ({**UP, "start": False}, 1, 6, []),  # not made at full autonomy: only reported
        ({**UP, "needs": []}, 1, 6, []),
    ],
)
def test_plan_up(proposal, running, most, started):
    assert plan_up(proposal, running, most) == started


DOWN = {"type": "NodeScaleDownProposed", "node_id": "node-2", "drain": True}


@pytest.mark.parametrize(
    ("proposal", "agents", "least", "stopped"),
    [
        (DOWN, ["node-1", "node-2"], 1, "node-2"),
        (DOWN, ["node-2"], 1, None),  # the last agent is kept (--min-agents)
        (DOWN, ["node-1", "node-2"], 2, None),
        (DOWN, ["node-1", "node-3"], 1, None),  # not one of this instance's agents
        ({**DOWN, "drain": False}, ["node-1", "node-2"], 1, None),  # not at full autonomy
    ],
)
def test_plan_down(proposal, agents, least, stopped):
    assert plan_down(proposal, agents, least) == stopped


def test_the_decider_config_keeps_the_users_table_and_names_the_hook():
    mine = {"aging_per_s": 0.5, "pause": {"threshold": 0.7}, "scaling": {"queued_after_s": 5.0, "enabled": False}}
    text = decider_toml(mine, "/venv/bin/python -m orchestrator.cli.main autoscale --data-dir '/a b'")
    config = decider_config(tomllib.loads(text)["decider"])
    assert config.scoring.aging_per_s == 0.5 and config.pause.threshold == 0.7
    assert config.scaling.enabled and config.scaling.queued_after_s == 5.0
    assert config.scaling.command.endswith("autoscale --data-dir '/a b'")
    with pytest.raises(ValueError, match="min_agents"):
        AutoscaleSettings(max_agents=1, min_agents=2)

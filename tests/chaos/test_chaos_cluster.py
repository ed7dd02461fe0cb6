"""Chaos in CI on a 3-server cluster (auth on): SIGKILL one server (seeded) and the decider
mid-run and restart them; every task done exactly once, verify clean. Long variants: scripts/chaos."""

from __future__ import annotations

import json

import pytest

from tests.chaos.plan import ChaosPlan
from tests.chaos.scenario import run_plan

pytestmark = pytest.mark.timeout(300)


def test_losing_one_of_three_servers_mid_run_loses_nothing_and_doubles_nothing(tmp_path):
    plan = ChaosPlan(
        seed=5,
        tasks=500,
        width=50,
        agents=2,
        slots=4,
        cluster=3,
        kill=("decider",),
        kill_server=True,
        pause_agent=None,
        hung_task=False,
        poison_task=False,
        timeout_s=200,
    )
    summary = run_plan(plan, tmp_path / "inst")
    assert summary["ok"], json.dumps(summary, indent=1, default=str)[:6000]
    fired = [f for f in summary["faults"] if f["fired_at_s"] is not None]
    assert {f["kind"] for f in fired} == {"kill", "kill-server"}
    assert all(f["restarted_at_s"] is not None for f in fired)

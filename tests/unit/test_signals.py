"""Autonomy changes, alerts and unschedulable tasks, decided purely from the views."""

from __future__ import annotations

import dataclasses

from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.signals import autonomy_change, unschedulable
from schemas import actions as act
from schemas import events as ev
from tests.unit.builders import at, graph, observed, registered, spec
from tests.unit.test_decide import views


def test_a_level_change_is_an_event_with_the_reason_and_supervised_alerts():
    v = dataclasses.replace(views(graph("g", spec("a")), registered("n1")), autonomy="supervised", confidence=0.42)
    changed, alert = autonomy_change(v, at(1), "cautious")
    assert isinstance(changed, ev.AutonomyChanged) and (changed.level, changed.previous) == ("supervised", "cautious")
    assert changed.reason == "confidence 0.42 implies supervised (was cautious)" and changed.by == ""
    assert isinstance(alert, act.Alert) and alert.kind == "autonomy"
    assert "nothing runs without approval" in alert.message
    assert autonomy_change(v, at(2), "supervised") == []
    cautious = dataclasses.replace(v, autonomy="cautious", confidence=0.6)
    assert [type(e).__name__ for e in autonomy_change(cautious, at(3), "full")] == ["AutonomyChanged"]
    assert autonomy_change(dataclasses.replace(v, autonomy="full"), at(4), None) == []


def test_a_ready_task_undispatchable_for_too_long_is_reported_once_with_its_reason():
    v = views(
        graph("g", spec("m", labels={"os": "macos"}), spec("ok")), registered("n1", os="linux"), observed("n1", t=400)
    )
    seen: set = set()
    config = DeciderConfig(node_ttl_s=20)
    assert unschedulable(v, at(100), config, [], seen, after_s=300) == []
    [u] = unschedulable(v, at(401), config, [("g", "ok")], seen, after_s=300)
    assert (u.task_id, u.reason) == ("m", "no live node with label os=macos") and u.since is not None
    assert unschedulable(v, at(500), config, [("g", "ok")], seen, after_s=300) == []


def test_a_node_view_behind_the_task_defers_the_report_until_it_catches_up():
    v = views(graph("g", spec("m", labels={"os": "macos"})), registered("n1", os="linux"), observed("n1", t=400))
    task = v.tasks[("g", "m")]
    config = DeciderConfig(node_ttl_s=20)
    seen: set = set()
    lagging = dataclasses.replace(v, nodes={}, seqs={**v.seqs, "node-scores": task.seq - 1})
    assert unschedulable(lagging, at(401), config, [], seen, after_s=300) == []
    assert seen == set()
    [u] = unschedulable(v, at(402), config, [], seen, after_s=300)
    assert u.reason == "no live node with label os=macos"


def test_a_task_held_back_only_by_busy_slots_is_queued_not_unschedulable():
    queued = [spec(f"q{i}") for i in range(50)]  # one live node with one slot: 49 wait their turn
    v = views(
        graph("g", *queued, spec("mac", labels={"os": "macos"}), spec("risky", tier=2, preflight="true")),
        registered("n1", slots=1, os="linux"),
        observed("n1", t=400),
        autonomy="cautious",
    )
    reported = {u.task_id: u.reason for u in unschedulable(v, at(401), DeciderConfig(node_ttl_s=20), [], set(), 300)}
    assert reported == {
        "mac": "no live node with label os=macos",
        "risky": "autonomy cautious and the task is tier 2",
    }


def test_a_queued_task_whose_nodes_died_is_reported():
    v = views(graph("g", spec("a")), registered("n1"), observed("n1", t=5))
    [u] = unschedulable(v, at(400), DeciderConfig(node_ttl_s=20), [], set(), 300)
    assert u.task_id == "a" and u.reason.startswith("no live node")

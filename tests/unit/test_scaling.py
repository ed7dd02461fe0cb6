"""Scale idle nodes down (`orchestrator.decision.scaling`): the idle threshold, no proposal while
ready work matches the node's labels, one proposal per idle episode, and replay re-deriving it."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.decision.config import decider_config
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.pause import Stamp
from orchestrator.decision.scaling import ScalingConfig, scale_down_actions
from orchestrator.replay.check import check
from orchestrator.reports.explain import subject_of, summary
from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView
from schemas import actions as act
from tests.unit.actionloop import Loop
from tests.unit.builders import at, graph, observed, registered, spec

SC = ScalingConfig(enabled=True, idle_after_s=60.0)
STAMP = Stamp(view_seqs={"node-scores": 1}, decider_id="d", decider_version="v", policy="eft")


def node(nid: str = "n1", *, idle_since: float | None = 0.0, seen: float = 100.0, **kw: object) -> NodeView:
    return NodeView(node_id=nid, registered_at=at(0), idle_since=None if idle_since is None else at(idle_since),
                    last_seen=at(seen), subject_seq=7, **kw)  # type: ignore[arg-type]  # fmt: skip


def ready(*labels: dict[str, str]) -> list[TaskView]:
    return [
        TaskView(graph_id="g", task_id=f"t{i}", command="x", state="ready", labels=lb) for i, lb in enumerate(labels)
    ]


@pytest.mark.parametrize(
    ("n", "tasks", "now", "proposed"),
    [
        (node(), [], 100.0, True),  # idle 100s >= 60s, nothing ready
        (node(), [], 59.0, False),  # idle 59s < 60s
        (node(), [], 60.0, True),  # exactly the threshold
        (node(idle_since=None), [], 100.0, True),  # never ran anything: idle since it registered
        (node(idle_since=50.0), [], 100.0, False),  # its last attempt ended 50s ago
        (node(active=("g/a#1",)), [], 100.0, False),  # it runs something
        (node(), ready({}), 100.0, False),  # a ready task without labels matches every node
        (node(labels={"gpu": "1"}), ready({"gpu": "1"}), 100.0, False),  # ready work for its labels
        (node(labels={"gpu": "1"}), ready({"gpu": "0"}, {"os": "mac"}), 100.0, True),  # none of it fits
        (node(), ready({"gpu": "1"}), 100.0, True),  # the node lacks the label the work needs
        (node(seen=10.0), [], 100.0, False),  # not alive (not seen within the ttl): not idle, gone
        (node(lost=True), [], 100.0, False),
        (node(draining=True), [], 100.0, False),
        (node(scale_down_for=at(0)), [], 100.0, False),  # this episode was proposed already
        (node(idle_since=20.0, scale_down_for=at(0)), [], 100.0, True),  # a new episode (it ran since)
    ],
)
def test_scale_down_table(n, tasks, now, proposed):
    out = scale_down_actions({n.node_id: n}, tasks, at(now), 20.0, SC, STAMP)
    assert bool(out) is proposed
    if proposed:
        [a] = out
        assert a.expected_seq == 7 and a.event.node_id == "n1" and a.event.idle_after_s == 60.0


def test_a_proposal_names_the_node_its_idle_time_labels_and_round():
    n = node(labels={"zone": "b", "gpu": "0"})
    [a] = scale_down_actions({"n1": n}, [], at(100), 20.0, SC, STAMP, autonomy="full")
    e = a.event
    assert e.idle_s == 100.0 and e.idle_since == at(0) and e.labels == {"gpu": "0", "zone": "b"}
    assert "idle 100s >= 60s" in e.reason and "gpu=0, zone=b" in e.reason and e.drain
    assert e.view_seqs == {"node-scores": 1} and e.now == at(100) and e.decider_id == "d"
    assert summary(e) == f"scale-down of n1 proposed: {e.reason}" and subject_of(e) == "n1"  # explain's line
    [b] = scale_down_actions({"n1": n}, [], at(100), 20.0, SC, STAMP, autonomy="cautious")
    assert not b.event.drain and "drained" not in b.event.reason


def test_off_is_off_and_the_config_table():
    assert scale_down_actions({"n1": node()}, [], at(100), 20.0, ScalingConfig(), STAMP) == []
    cfg = decider_config({"scaling": {"enabled": True, "idle_after_s": 30, "command": "cat > /tmp/x"}})
    assert cfg.scaling == ScalingConfig(enabled=True, idle_after_s=30, command="cat > /tmp/x")
    with pytest.raises(ValueError, match=r"\[decider\].scaling: unknown key\(s\) idle"):
        decider_config({"scaling": {"idle": 3}})
    with pytest.raises(ValueError, match="idle_after_s must be > 0"):
        decider_config({"scaling": {"idle_after_s": 0}})


def test_an_idle_node_is_proposed_once_per_episode_and_replay_re_derives_it():
    config = DeciderConfig(scaling=SC)
    loop = Loop(config, registered("n1", slots=1), registered("n2", slots=1, gpu="1"), observed("n1", t=1))
    loop.append(observed("n2", t=1))
    assert loop.round(at(2)) == ([], [])  # idle 2s: nothing yet
    loop.append(graph("g", spec("a", labels={"gpu": "1"})))
    loop.append(observed("n1", t=70))
    loop.append(observed("n2", t=70))
    actions, dispatches = loop.round(at(70))
    # n2 takes the gpu task; n1 has idled 70s and the one ready task needs a label it lacks
    assert [d.node_id for d in dispatches] == ["n2"]
    assert [(type(e).__name__, e.node_id) for e in actions] == [("NodeScaleDownProposed", "n1")]
    loop.append(observed("n1", t=80))
    assert loop.round(at(80))[0] == []  # the same episode: no second proposal
    loop.finish(at(85), lambda d: "success")
    loop.append(observed("n1", t=160))
    loop.append(observed("n2", t=160))
    actions, _ = loop.round(at(160))
    # n1 is still in its first episode; n2's began when its run ended at 85 (75s ago)
    assert [e.node_id for e in actions] == ["n2"]
    assert actions[0].idle_since == at(85)
    report = check(loop.messages, base=config)
    assert report["mismatches"] == [] and report["reproduced"] == report["decisions"] == 3
    # the proposal names its threshold: replay with the defaults (scaling off) re-derives it too
    assert check(loop.messages)["mismatches"] == []


def test_replay_reports_a_proposal_it_does_not_re_derive():
    config = DeciderConfig(scaling=SC)
    loop = Loop(config, registered("n1", slots=1), observed("n1", t=100))
    [e] = loop.round(at(100))[0]
    forged = dataclasses.replace(SC, idle_after_s=200.0)  # a threshold the node was not idle past
    loop.messages.pop()
    loop.append(act.NodeScaleDownProposed(**{**{f: getattr(e, f) for f in e.__struct_fields__},
                                            "idle_after_s": forged.idle_after_s}))  # fmt: skip
    [m] = check(loop.messages)["mismatches"]
    assert m["differences"] == [{"field": "decision", "recorded": "NodeScaleDownProposed", "replayed": "none"}]

"""Scale up on sustained queueing (`orchestrator.decision.scaling.scale_up_actions`): the threshold,
the free slots of the live matching nodes, the labels that would help, autonomy, one proposal
per queueing episode (the readiness view's ``Health.scale_up``), replay re-deriving it, and
`why` of a waiting task naming the open proposal."""

from __future__ import annotations

import pytest

from orchestrator.decision.config import decider_config
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.pause import Stamp
from orchestrator.decision.scaling import ScalingConfig, scale_up_actions
from orchestrator.decision.why import why
from orchestrator.replay.check import check
from orchestrator.reports.explain import summary
from projections.node_scores.fold import NodeView
from projections.readiness.entries import Health
from projections.readiness.fold import TaskView
from schemas import actions as act
from schemas import subjects as S
from tests.unit.actionloop import Loop
from tests.unit.builders import at, graph, observed, registered, spec

SC = ScalingConfig(enabled=True, queued_after_s=60.0)
STAMP = Stamp(view_seqs={"readiness": 1}, decider_id="d", decider_version="v", policy="eft")


def node(nid: str = "n1", *, slots: int = 2, seen: float = 100.0, **kw: object) -> NodeView:
    return NodeView(node_id=nid, slots=slots, registered_at=at(0), last_seen=at(seen), **kw)  # type: ignore[arg-type]


def tasks(n: int, *, since: float = 0.0, **labels: str) -> list[TaskView]:
    return [
        TaskView(graph_id="g", task_id=f"t{i}", command="x", state="ready", ready_since=at(since), labels=labels)
        for i in range(n)
    ]


def need(tasks_: int, nodes: int, per: int, live: int, **labels: str) -> act.ScaleNeed:
    return act.ScaleNeed(labels=labels, tasks=tasks_, nodes=nodes, slots_per_node=per, live=live)


OPEN = Health(scale_up=at(0), scale_up_seq=9)


@pytest.mark.parametrize(
    ("nodes", "ready", "now", "kw", "needs"),
    [
        ([node()], tasks(3), 100.0, {}, [need(1, 1, 2, 1)]),  # two fit n1's free slots, one is beyond them
        ([node()], tasks(2), 100.0, {}, None),  # n1's two free slots take them
        ([node(active=("a#1", "b#1"))], tasks(3), 59.0, {}, None),  # ready 59s < 60s: not sustained yet
        ([node(active=("a#1", "b#1"))], tasks(3), 60.0, {}, [need(3, 2, 2, 1)]),  # exactly the threshold
        ([node(active=("a#1",))], tasks(3), 100.0, {}, [need(2, 1, 2, 1)]),  # one free slot left
        ([node(active=("a#1", "b#1"))], tasks(2, since=50.0), 100.0, {}, None),  # the newest waited 50s only
        ([node()], tasks(3), 100.0, {"taken": {("g", "t0"): "n1"}}, [need(1, 1, 2, 1)]),  # t0 now on n1, t1 fits
        ([node()], tasks(2), 100.0, {"taken": {("g", "x"): "n1", ("g", "y"): "n1"}}, [need(2, 1, 2, 1)]),  # taken
        ([node()], tasks(2), 100.0, {"taken": {("g", "x"): ""}}, None),  # a cache hit takes no slot
        ([node()], tasks(1, gpu="1"), 100.0, {}, [need(1, 1, 2, 0, gpu="1")]),  # no live node has the label
        ([node(labels={"gpu": "1"})], tasks(3, gpu="1"), 100.0, {}, [need(1, 1, 2, 1, gpu="1")]),
        ([node(seen=10.0)], tasks(1), 100.0, {}, [need(1, 1, 1, 0)]),  # not alive: no node, of 1 slot
        ([node(lost=True), node("n2", slots=4)], tasks(5), 100.0, {}, [need(1, 1, 4, 1)]),  # only n2 counts
        ([], tasks(3), 100.0, {}, [need(3, 3, 1, 0)]),  # no node at all
        ([node(active=("a#1", "b#1"))], tasks(3), 100.0, {"health": OPEN}, None),  # this episode was proposed
        ([node(active=("a#1", "b#1"))], tasks(3), 100.0, {"health": Health(scale_up_seq=9)}, [need(3, 2, 2, 1)]),
        ([node(active=("a#1", "b#1"))], tasks(3), 100.0, {"held": lambda t: True}, None),  # gated or paused
        ([node(active=("a#1",))], tasks(3), 100.0, {"autonomy": "cautious"}, [need(3, 3, 1, 1)]),  # one per node
    ],
)
def test_scale_up_table(nodes, ready, now, kw, needs):
    out = scale_up_actions({n.node_id: n for n in nodes}, ready, at(now), 20.0, SC, STAMP, **kw)
    if needs is None:
        assert out == []
        return
    [a] = out
    assert list(a.event.needs) == needs
    assert a.event.nodes == sum(n.nodes for n in needs)
    assert a.event.queued == a.event.slots == sum(n.tasks for n in needs)


def test_mixed_labels_each_get_their_need_and_the_proposal_says_so():
    ready = tasks(3) + [
        TaskView(graph_id="g", task_id=f"gpu{i}", command="x", state="ready", ready_since=at(i), labels={"gpu": "1"})
        for i in range(2)
    ]
    nodes = {"n1": node(active=("a#1", "b#1"))}
    [a] = scale_up_actions(nodes, ready, at(100), 20.0, SC, STAMP, health=Health(scale_up_seq=4))
    e = a.event
    assert e.needs == (need(3, 2, 2, 1), need(2, 1, 2, 0, gpu="1"))  # sorted by labels: none first
    assert (e.queued, e.nodes, e.queued_since, e.queued_s, e.queued_after_s) == (5, 3, at(0), 100.0, 60.0)
    assert e.start and a.expected_seq == 4 and e.event_id == f"scale-up:{at(100).isoformat()}"
    assert "5 ready task(s) waited up to 100s >= 60s" in e.reason
    assert "3 need no labels: 2 node(s) of 2 slot(s) like the 1 live one(s)" in e.reason
    assert "2 need gpu=1: 1 node(s) of 2 slot(s), which no live node has" in e.reason
    assert e.reason.endswith("scale up by 3 node(s) (they may be started)")
    assert e.view_seqs == {"readiness": 1} and e.now == at(100) and e.decider_id == "d"
    assert summary(e) == f"scale-up by 3 node(s) proposed: {e.reason}"  # explain's and `events`' line
    assert S.route(e)[1] == f"{S.ROOT}.system.scaling.NodeScaleUpProposed"
    [b] = scale_up_actions(nodes, ready, at(100), 20.0, SC, STAMP, autonomy="cautious")
    assert not b.event.start and "started" not in b.event.reason and b.expected_seq == 0


def test_off_is_off_and_the_config():
    assert scale_up_actions({}, tasks(3), at(100), 20.0, ScalingConfig(), STAMP) == []
    assert decider_config({"scaling": {"queued_after_s": 5}}).scaling.queued_after_s == 5
    with pytest.raises(ValueError, match="queued_after_s must be > 0"):
        decider_config({"scaling": {"queued_after_s": 0}})


def test_one_proposal_per_queueing_episode_and_replay_re_derives_them():
    config = DeciderConfig(scaling=ScalingConfig(enabled=True, queued_after_s=60.0, idle_after_s=1e6))
    loop = Loop(config, registered("n1", slots=1), observed("n1", t=1), graph("g", spec("a"), spec("b"), spec("c")))
    actions, dispatches = loop.round(at(1))
    assert actions == [] and len(dispatches) == 1  # b and c wait 1s: not sustained
    loop.append(observed("n1", t=61))
    [up], _ = loop.round(at(61))
    assert isinstance(up, act.NodeScaleUpProposed) and up.needs == (need(2, 2, 1, 1),)
    views = loop.views()
    waiting = next(t for t in views.ready_tasks())
    said = why(waiting, views, at(62), config)
    assert said["headline"].startswith("every usable node is busy")
    assert f"scale-up proposed (queued since {at(0).strftime('%H:%M:%S')}): {up.reason}" in said["details"]
    loop.append(observed("n1", t=70))
    assert loop.round(at(70)) == ([], [])  # the same episode: no second proposal
    loop.finish(at(71), lambda d: "success")
    loop.append(observed("n1", t=72))
    actions, dispatches = loop.round(at(72))
    assert actions == [] and len(dispatches) == 1  # c still waits: the episode is still open
    assert loop.views().health.scale_up == at(0)
    loop.finish(at(73), lambda d: "success")
    loop.append(observed("n1", t=74))
    actions, dispatches = loop.round(at(74))
    assert actions == [] and len(dispatches) == 1  # c takes n1: nothing is ready, the episode ends
    assert loop.views().health.scale_up is None and loop.views().health.scale_up_reason == ""
    loop.finish(at(75), lambda d: "success")
    loop.append(graph("h", spec("x"), spec("y")))  # (its tasks are ready since its submission's time, 0)
    loop.append(observed("n1", t=200))
    [again], _ = loop.round(at(200))
    assert isinstance(again, act.NodeScaleUpProposed) and again.queued == 1  # a new episode
    report = check(loop.messages, base=config)
    assert report["mismatches"] == [] and report["reproduced"] == report["decisions"] == 6  # 4 dispatches, 2 proposals
    # the proposal names its threshold: replay with the defaults (scaling off) re-derives it too
    assert check(loop.messages)["mismatches"] == []


def test_replay_reports_a_proposal_it_does_not_re_derive():
    config = DeciderConfig(scaling=SC)
    loop = Loop(config, graph("g", spec("a")))
    [e] = loop.round(at(100))[0]
    loop.messages.pop()
    forged = {**{f: getattr(e, f) for f in e.__struct_fields__}, "queued_after_s": 200.0}  # not waited that long
    loop.append(act.NodeScaleUpProposed(**forged))
    [m] = check(loop.messages)["mismatches"]
    assert m["task"] == "(scale-up)"
    assert m["differences"] == [{"field": "decision", "recorded": "NodeScaleUpProposed", "replayed": "none"}]


def test_the_consoles_nodes_page_lists_the_proposals_newest_first():
    from orchestrator.console.pages import nodes_page

    nodes = {"n1": node(active=("a#1", "b#1"))}
    [a] = scale_up_actions(nodes, tasks(3), at(100), 20.0, SC, STAMP)
    down = act.NodeScaleDownProposed(event_id="d", occurred_at=at(200), node_id="n1", reason="idle 300s")
    page = nodes_page(nodes, [], proposals=[(at(100), a.event), (at(200), down)], open_since=at(0))
    assert "<h3>scaling proposals</h3>" in page
    up_at, down_at = page.index("scale up by 2 node(s) (open)"), page.index("scale down n1")
    assert down_at < up_at and "idle 300s" in page and "beyond the free slots" in page
    assert "(open)" not in nodes_page(nodes, [], proposals=[(at(100), a.event)])  # the episode ended
    assert '<h3>scaling proposals</h3><p class="muted">none</p>' in nodes_page(nodes, [])

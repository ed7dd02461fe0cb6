"""replay --check re-derives cache hits like dispatches, and catches a hit that was not decided so."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from orchestrator.decision.decide import DeciderConfig, Views, decide
from orchestrator.replay.check import check
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import codec
from schemas import events as ev
from schemas.subjects import route
from tests.unit.builders import at, observed, registered
from tests.unit.cachebuilders import OUT, build


@dataclass
class Msg:
    seq: int
    subject: str
    data: bytes


def _views(events: list) -> Views:
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    return Views(tasks=r.tasks, nodes=n.nodes, seqs={"readiness": r.seq, "node-scores": n.seq}, cache=r.cache)


def recorded_run() -> list:
    """Two runs of the same graph by a decider loop: the first dispatched (agents succeed with
    outputs), the second all cache hits."""
    events: list = [registered("n1", slots=4), observed("n1", t=1), build("g1")]
    for round_ in range(12):
        if round_ == 6:
            events.append(build("g2"))
        now = at(10 + round_)
        decisions = decide(_views(events), now, DeciderConfig())
        for d in decisions:
            e = d.event
            events.append(e)
            if isinstance(e, ev.TaskDispatched):
                events.append(
                    ev.TaskCompleted(
                        event_id=f"c:{e.graph_id}:{e.task_id}",
                        occurred_at=now,
                        graph_id=e.graph_id,
                        task_id=e.task_id,
                        node_id=e.node_id,
                        attempt=e.attempt,
                        outcome="success",
                        outputs=OUT[e.task_id],
                    )  # fmt: skip
                )
    return events


def messages(events: list) -> list[Msg]:
    return [Msg(i, route(e)[1], codec.encode(e)) for i, e in enumerate(events, 1)]


def test_every_hit_and_dispatch_is_reproduced():
    events = recorded_run()
    kinds = [type(e).__name__ for e in events if isinstance(e, ev.TaskDispatched | ev.TaskCacheHit)]
    assert kinds.count("TaskDispatched") == 3 and kinds.count("TaskCacheHit") == 3
    report = check(messages(events))
    assert (report["decisions"], report["reproduced"], report["mismatches"]) == (6, 6, [])


def test_a_hit_not_decided_so_is_a_mismatch_naming_the_field():
    events = recorded_run()
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.TaskCacheHit))
    events[i] = msgspec.structs.replace(events[i], reused_attempt=7)
    report = check(messages(events))
    assert report["reproduced"] == 5
    [m] = report["mismatches"]
    assert [d["field"] for d in m["differences"]] == ["reused_attempt"]


def test_explain_shows_the_hit_and_the_first_runs_miss():
    from orchestrator.reports.explain import explain

    events = list(enumerate(recorded_run(), 1))
    mine = [(s, e) for s, e in events if getattr(e, "task_id", None) == "a" and e.graph_id == "g2"]
    [d] = explain(mine)["decisions"]
    assert d["kind"] == "cache hit" and d["reused"] == {"graph": "g1", "task": "a", "attempt": 1}
    assert explain(mine)["timeline"][0]["what"].startswith("cache hit: action key")
    first = [(s, e) for s, e in events if getattr(e, "task_id", None) == "a" and e.graph_id == "g1"]
    [d] = explain(first)["decisions"]
    assert d["cache_miss"] == "no entry" and len(d["action_key"]) == 64

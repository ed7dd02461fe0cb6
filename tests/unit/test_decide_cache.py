"""Cache hits as decisions: which ready tasks are reused, which are dispatched, and why they missed."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.decision.decide import DeciderConfig, Views, decide
from orchestrator.decision.why import why
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import at, observed, registered
from tests.unit.cachebuilders import SRC, build, done

CONFIG = DeciderConfig(node_ttl_s=20)
NODES = [registered("n1", slots=4), observed("n1", t=5)]
FIRST = [build("g1"), done("g1", "a"), done("g1", "b"), done("g1", "link")]


def flat(events):
    out = []
    for e in events:
        out.extend(e if isinstance(e, list) else [e])
    return out


def views(*events, nodes=True) -> Views:
    pairs = list(enumerate(flat([*(NODES if nodes else []), *events]), 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    seqs = {"readiness": r.seq, "node-scores": n.seq}
    return Views(tasks=r.tasks, nodes=n.nodes, seqs=seqs, types=n.types, ready=r.ready, cache=r.cache)


def decided(*events, nodes=True):
    out = {}
    for d in decide(views(*events, nodes=nodes), at(6), CONFIG):
        e = d.event
        out[(e.graph_id, e.task_id)] = e
    return out


def hits(out):
    return sorted(t for (_, t), e in out.items() if isinstance(e, ev.TaskCacheHit))


def misses(out):
    return {t: e.cache_miss for (_, t), e in out.items() if isinstance(e, ev.TaskDispatched)}


def test_a_new_run_of_the_same_graph_is_reused_without_any_node():
    for nodes in (True, False):
        out = decided(*FIRST, build("g2"), nodes=nodes)
        assert hits(out) == ["a", "b", "link"] and misses(out) == {}
    h = out[("g2", "a")]
    assert (h.reused_graph, h.reused_task, h.reused_attempt, h.domain) == ("g1", "a", 1, "g.toml")
    assert "matches the success of g1/a attempt 1 on n1 (its domain; 1 outputs)" in h.reason
    assert h.outputs and h.now == at(6) and h.view_seqs


def test_hits_release_dependents_that_hit_in_turn():
    first = decided(*FIRST, build("g2"))
    out = decided(*FIRST, build("g2"), first[("g2", "a")], first[("g2", "b")])
    assert hits(out) == ["link"]


def test_a_whole_unchanged_build_is_one_round_in_dependency_order():
    v = views(*FIRST, build("g2"))
    round_ = decide(v, at(6), CONFIG)
    assert [(d.event.task_id, d.needs) for d in round_] == [
        ("a", ()),
        ("b", ()),
        ("link", (("g2", "a"), ("g2", "b"))),
    ]
    link = round_[2].event
    assert "completed by this round's hits of a, b" in link.reason
    # the key the round gave link is the key the fold gives it once a's and b's hits are folded,
    # and the fold takes every hit of the round in its order: g2 ends with nothing ignored
    after = views(*FIRST, build("g2"), round_[0].event, round_[1].event)
    assert after.tasks[("g2", "link")].action_key == link.key
    pairs = list(enumerate(flat([*NODES, *FIRST, build("g2"), *(d.event for d in round_)]), 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    assert {t.task_id: t.state for (g, t_), t in r.tasks.items() if g == "g2"} == dict.fromkeys(
        ("a", "b", "link"), "succeeded"
    )
    assert r.ignored == []


def test_the_chain_stops_where_a_task_misses():
    src2 = (SRC[0], rec.ArtifactRecord(path="src/b.c", digest="e" * 64, size=1))
    round_ = decide(views(*FIRST, build("g2", src=src2)), at(6), CONFIG)
    assert [(d.event.task_id, type(d.event).__name__) for d in round_] == [
        ("a", "TaskCacheHit"),
        ("b", "TaskDispatched"),
    ]  # link waits for b's run: its key is not known yet


def test_a_chain_counts_in_the_rounds_limit():
    limited = DeciderConfig(node_ttl_s=20, max_dispatches=2)
    round_ = decide(views(*FIRST, build("g2")), at(6), limited)
    assert [d.event.task_id for d in round_] == ["a", "b"]


def test_the_first_run_says_no_entry():
    assert misses(decided(build("g1"))) == {"a": "no entry", "b": "no entry"}


def test_a_changed_input_misses_naming_the_field_and_the_rest_hits():
    src2 = (SRC[0], rec.ArtifactRecord(path="src/b.c", digest="e" * 64, size=1))
    out = decided(*FIRST, build("g2", src=src2))
    assert hits(out) == ["a"]
    assert misses(out) == {"b": "changed since the last hit: sources"}
    out = decided(*FIRST, build("g2", b=dict(command="cc -O2 b")))
    assert misses(out) == {"b": "changed since the last hit: command"}


def test_a_dependency_with_other_outputs_misses_on_deps():
    other = (rec.ArtifactRecord(path="a.o", digest="f" * 64),)
    g2 = [build("g2", a=dict(command="cc -g a")), done("g2", "a", outputs=other), done("g2", "b", node="n1")]
    out = decided(*FIRST, *g2)
    assert misses(out) == {"link": "changed since the last hit: deps"}


def test_a_revoked_entry_is_a_miss_that_says_so():
    g1 = views(*FIRST)
    key = g1.tasks[("g1", "a")].action_key
    revoke = ev.CacheEntryRevoked(event_id="r", occurred_at=at(5), domain="g.toml", key=key, reason="a.o is missing")
    out = decided(*FIRST, revoke, build("g2"))
    assert hits(out) == ["b"] and misses(out) == {"a": "entry revoked: a.o is missing"}


@pytest.mark.parametrize(
    ("what", "graph", "hit"),
    [
        ("another domain", build("g2", cache_domain="pr-7"), []),
        (
            "another domain that trusts it",
            build("g2", cache_domain="pr-7", cache_trusts=("g.toml",)),
            ["a", "b", "link"],
        ),
        ("cache = false", build("g2", cache=False), []),
        ("the task uncached", build("g2", uncached=("a",)), ["b"]),
    ],
)
def test_trust_domains_and_opting_out(what, graph, hit):
    assert hits(decided(*FIRST, graph)) == hit, what


def test_a_trusting_domain_reuses_but_its_own_run_records_in_its_own_domain():
    g2 = build("g2", cache_domain="pr-7", cache_trusts=("g.toml",))
    h = decided(*FIRST, g2)[("g2", "a")]
    assert h.domain == "g.toml"
    # main does not trust pr-7: a success recorded only there is not reused by main
    pr_only = [build("p1", cache_domain="pr-7", a=dict(command="evil")), done("p1", "a")]
    out = decided(*pr_only, build("m1", a=dict(command="evil")))
    assert "a" not in hits(out)


def test_partial_success_is_never_reused():
    first = [build("g1"), done("g1", "a", outcome="partial"), done("g1", "b")]
    assert hits(decided(*first, build("g2"))) == ["b"]


def test_hits_are_deterministic_and_guarded():
    v = views(*FIRST, build("g2"))
    a, b = decide(v, at(6), CONFIG), decide(v, at(6), CONFIG)
    assert [codec.encode(d.event) for d in a] == [codec.encode(d.event) for d in b]
    t = v.tasks[("g2", "a")]
    d = next(d for d in a if d.event.task_id == "a")
    assert (d.expected_seq, d.version) == (t.last_seq, t.version + 1)
    assert msgspec.json.decode(codec.encode(d.event), type=ev.TaskCacheHit) == d.event


def test_why_says_a_ready_task_will_be_reused_or_why_not():
    v = views(*FIRST, build("g2"))
    assert "reuses the cached success of g1/a attempt 1" in why(v.tasks[("g2", "a")], v, at(6), CONFIG)["headline"]
    v = views(build("g1"))
    assert why(v.tasks[("g1", "a")], v, at(6), CONFIG)["details"][0] == "cache: no entry"


def test_the_shells_revocation_of_an_entry_whose_blob_does_not_verify():
    from node_agent.artifacts.blobinfo import BlobInfo
    from orchestrator.processes.cacheguard import _problem, revocation

    h = decided(*FIRST, build("g2"))[("g2", "a")]
    o = h.outputs[0]
    assert _problem(o, BlobInfo(o.digest, o.size, None, "nuid", intact=True)) == ""
    assert "missing from the artifact store" in _problem(o, None)
    assert "names other content" in _problem(o, BlobInfo(o.digest, o.size, None, "nuid", intact=False))
    assert "1 bytes stored, 2 recorded" in _problem(o, BlobInfo(o.digest, 1, None, "nuid", intact=True))
    r = revocation(h, [(o.digest, "gone")], at(7))
    assert (r.domain, r.key, r.missing, r.reason, r.task_id) == ("g.toml", h.key, (o.digest,), "gone", "a")
    assert r.event_id == revocation(h, [], at(8)).event_id  # one per entry: two deciders revoke it once

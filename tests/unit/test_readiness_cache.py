"""The cache's part of the readiness view: keys, entries made by agents' successes, hits, revocations."""

from __future__ import annotations

import pytest

from projections.readiness.entries import CacheEntry, CacheLast
from projections.readiness.fold import ReadinessView, evolve_readiness, readiness_keys, readiness_values
from projections.runner import project
from schemas import events as ev
from schemas import records as rec
from schemas.subjects import cache_key, cache_last_key
from tests.unit.builders import at
from tests.unit.cachebuilders import OUT, SRC, build, done, hit


def fold(*events):
    flat = []
    for e in events:
        flat.extend(e if isinstance(e, list) else [e])
    return project(evolve_readiness, ReadinessView(), list(enumerate(flat, 1)))


def key(view, g, t):
    return view.tasks[(g, t)].action_key


def entries(view):
    return {v.task_id: v for v in view.cache.values() if isinstance(v, CacheEntry)}


def test_a_new_run_of_the_same_graph_has_the_same_keys():
    v = fold(build("g1"), done("g1", "a"), done("g1", "b"), done("g1", "link"), build("g2"))
    for t in ("a", "b"):
        assert key(v, "g2", t) == key(v, "g1", t) != ""
    assert key(v, "g2", "link") == ""  # its dependencies have not succeeded in g2 yet
    assert key(v, "g1", "link") != ""
    assert sorted(entries(v)) == ["a", "b", "link"]
    e = entries(v)["a"]
    assert (e.graph_id, e.attempt, e.node_id, e.outputs, e.domain) == ("g1", 1, "n1", OUT["a"], "g.toml")


def test_a_hit_completes_the_task_and_dependents_get_its_outputs_and_the_same_key():
    v1 = fold(build("g1"), done("g1", "a"), done("g1", "b"), build("g2"))
    ka, kb = key(v1, "g2", "a"), key(v1, "g2", "b")
    v = fold(build("g1"), done("g1", "a"), done("g1", "b"), build("g2"), hit("g2", "a", ka), hit("g2", "b", kb))
    a = v.tasks[("g2", "a")]
    assert (a.state, a.outputs, a.outcome, a.cache_hit) == ("succeeded", OUT["a"], "success", "g1/a attempt 1")
    link = v.tasks[("g2", "link")]
    assert link.state == "ready" and link.action_key == key(v, "g1", "link")
    assert len(entries(v)) == 2  # a hit makes no entry
    assert v.cache[cache_last_key("g.toml", "a")] == CacheLast(domain="g.toml", task_id="a", key=ka, seq=7)


def test_a_changed_source_file_changes_only_its_task_and_what_depends_on_it():
    src2 = (SRC[0], rec.ArtifactRecord(path="src/b.c", digest="e" * 64, size=1))
    v = fold(build("g1"), build("g2", src=src2))
    assert key(v, "g2", "a") == key(v, "g1", "a")
    assert key(v, "g2", "b") != key(v, "g1", "b")
    f1, f2 = v.tasks[("g1", "b")].action_form, v.tasks[("g2", "b")].action_form
    assert [k for k in f1 if f1[k] != f2[k]] == ["sources"]


@pytest.mark.parametrize(
    ("what", "events"),
    [
        ("partial", [done("g1", "a", outcome="partial")]),
        ("failure", [done("g1", "a", outcome="failure")]),
        ("declared outputs not stored", [done("g1", "a", outputs=())]),
    ],
)
def test_no_entry_from(what, events):
    assert "a" not in entries(fold(build("g1"), *events)), what


@pytest.mark.parametrize(
    ("what", "graph"),
    [
        ("cache = false on the graph", build("g1", cache=False)),
        ("cache = false on the task", build("g1", uncached=("a",))),
        ("tier 2", build("g1", a=dict(tier=2, preflight="true"))),
        ("tier 3", build("g1", a=dict(tier=3))),
    ],
)
def test_not_cacheable(what, graph):
    v = fold(graph)
    assert v.tasks[("g1", "a")].action_key == "" and not v.tasks[("g1", "a")].action_form, what
    assert (key(v, "g1", "b") != "") == ("graph" not in what)


def test_a_task_declaring_no_data_in_a_graph_without_source_is_not_cacheable():
    g = ev.GraphSubmitted(event_id="s", occurred_at=at(0), graph_id="g", tasks=(rec.TaskSpec(id="t", command="date"),))
    assert fold(g).tasks[("g", "t")].action_key == ""


def test_entries_are_immutable_until_revoked():
    v = fold(build("g1"), done("g1", "a"), build("g2"))
    k = key(v, "g1", "a")
    other = (rec.ArtifactRecord(path="a.o", digest="f" * 64),)
    v = fold(build("g1"), done("g1", "a"), build("g2"), done("g2", "a", node="n2", outputs=other))
    assert entries(v)["a"].graph_id == "g1"  # the first success's entry stays
    revoke = ev.CacheEntryRevoked(event_id="r", occurred_at=at(9), domain="g.toml", key=k, reason="blob missing")
    v = fold(build("g1"), done("g1", "a"), revoke, build("g2"), done("g2", "a", node="n2", outputs=other))
    assert entries(v)["a"].graph_id == "g2" and entries(v)["a"].revoked == ""
    v = fold(build("g1"), done("g1", "a"), revoke)
    assert entries(v)["a"].revoked == "blob missing"


def test_domains_keep_entries_apart():
    v = fold(build("g1"), done("g1", "a"), build("g2", cache_domain="pr-7"), done("g2", "a", node="n2"))
    doms = sorted(e.domain for e in v.cache.values() if isinstance(e, CacheEntry) and e.task_id == "a")
    assert doms == ["g.toml", "pr-7"]
    assert v.tasks[("g2", "a")].cache_domain == "pr-7"


def test_a_hit_of_a_task_not_ready_or_done_is_ignored():
    v = fold(build("g1"), hit("g1", "link", "k"))
    assert v.tasks[("g1", "link")].state == "pending" and v.ignored
    v = fold(build("g1"), done("g1", "a"), hit("g1", "a", "k"))
    assert v.tasks[("g1", "a")].cache_hit == ""


def test_cache_values_are_written_and_listed():
    v = fold(build("g1"), done("g1", "a"))
    k = cache_key("g.toml", key(v, "g1", "a"))
    assert k in readiness_keys(v)
    assert readiness_values(v, {k})[k] == entries(v)["a"]


def test_old_graph_events_decode_with_the_cache_on():
    from schemas import codec

    old = b'{"type":"GraphSubmitted","event_id":"e","occurred_at":"2026-01-01T00:00:00Z","graph_id":"g","tasks":[]}'
    g = codec.decode(old)
    assert g.cache is True and g.cache_domain == "" and g.uncached == ()

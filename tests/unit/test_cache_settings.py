"""The cache's settings in a graph file, the lifecycle of a cache hit, and verify's view of one."""

from __future__ import annotations

import pytest

from orchestrator.decision import lifecycle as lc
from orchestrator.errors import GraphFileError
from orchestrator.graphs.graphfile import build_graph, build_with_source
from orchestrator.graphs.submission import graph_digest, graph_events
from orchestrator.replay.verify import verify
from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0
from tests.unit.cachebuilders import build, done, hit


def doc(*tasks, **graph):
    return {"graph": {"id": "g", **graph}, "tasks": list(tasks)}


def task(tid, **extra):
    return {"id": tid, "command": "true", **extra}


def test_settings_are_read_and_carried_by_the_submission():
    d = doc(task("a", cache=False), task("b"), cache_domain="main", cache_trusts=["release", "release"])
    spec = build_graph("f.toml", d)
    assert (spec.cache, spec.uncached, spec.cache_domain, spec.cache_trusts) == (True, ("a",), "main", ("release",))
    [g] = graph_events(spec, T0, "e")
    assert (g.cache, g.uncached, g.cache_domain, g.cache_trusts) == (True, ("a",), "main", ("release",))
    assert build_graph("f.toml", doc(task("a"), cache=False)).cache is False


def test_a_submitted_graph_s_default_domain_is_its_file_s_absolute_path(tmp_path, monkeypatch):
    """`niyantra build .` from the build folder and `niyantra build build` from its parent are one
    domain (they hit each other's entries); a graph's own cache_domain is kept as written."""
    (tmp_path / "build").mkdir()
    d = doc(task("a"))
    monkeypatch.chdir(tmp_path / "build")
    here = build_with_source("build.ninja", d, tmp_path / "build", hash_source=True)
    monkeypatch.chdir(tmp_path)
    parent = build_with_source("build/build.ninja", d, tmp_path / "build", hash_source=True)
    assert here.cache_domain == parent.cache_domain == str((tmp_path / "build" / "build.ninja").resolve())
    assert here.source == "build.ninja"  # the file as the user named it, in messages
    named = build_with_source("build/build.ninja", doc(task("a"), cache_domain="main"), tmp_path, hash_source=True)
    assert named.cache_domain == "main"


def test_defaults_keep_the_digest_and_settings_change_it():
    plain = graph_digest(build_graph("f.toml", doc(task("a"))))
    assert graph_digest(build_graph("f.toml", doc(task("a"), cache=True))) == plain
    assert graph_digest(build_graph("f.toml", doc(task("a"), cache_domain="main"))) != plain
    assert graph_digest(build_graph("f.toml", doc(task("a", cache=False)))) != plain


@pytest.mark.parametrize(
    ("d", "message"),
    [
        (doc(task("a", cache="no")), "task 'a': field 'cache': must be true or false"),
        (doc(task("a"), cache=1), "field 'cache': must be true or false"),
        (doc(task("a"), cache_domain=3), "field 'cache_domain': must be a string"),
        (doc(task("a"), cache_trusts="main"), "field 'cache_trusts': must be a list of domain names"),
        (doc(task("a"), cache_trusts=[""]), "field 'cache_trusts': must be a list of domain names"),
    ],
)
def test_bad_settings_name_the_field(d, message):
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", d)
    text = "\n".join(str(p) for p in info.value.problems)
    assert message in text, text


def _hit():
    return ev.TaskCacheHit(event_id="h", occurred_at=T0, graph_id="g", task_id="a", key="k")


SPEC = rec.TaskSpec(id="a", command="x")


@pytest.mark.parametrize(
    ("life", "spec", "move"),
    [
        (lc.Life(), SPEC, "cache hit"),
        (lc.Life(attempt=1), SPEC, "cache hit"),  # after a failed attempt, waiting for the next
        (lc.Life(state="dispatched", attempt=1, node="n"), SPEC, ""),
        (lc.Life(state="running", attempt=1, node="n"), SPEC, ""),
        (lc.Life(state="succeeded"), SPEC, ""),
        (lc.Life(state="cancelled"), SPEC, ""),
        (lc.Life(), rec.TaskSpec(id="a", command="x", tier=2, preflight="true"), ""),
        (lc.Life(approved_by="ana"), rec.TaskSpec(id="a", command="x", tier=3), ""),
    ],
)
def test_a_cache_hit_in_the_lifecycle(life, spec, move):
    step = lc.next_state(life, _hit(), spec)
    assert step.move == move
    assert step.life.state == ("succeeded" if move else life.state)
    assert bool(step.why) == (not move)


def _log(*events):
    flat = []
    for e in events:
        flat.extend(e if isinstance(e, list) else [e])
    return list(enumerate(flat, 1))


def test_verify_accepts_a_run_of_hits_and_refuses_a_hit_before_its_dependencies():
    ok = verify(_log(build("g"), hit("g", "a", "k"), hit("g", "b", "k"), hit("g", "link", "k")))
    assert ok["ok"], ok["violations"]
    bad = verify(_log(build("g"), hit("g", "link", "k")))
    assert [v["invariant"] for v in bad["violations"]] == ["I2"]
    twice = verify(_log(build("g"), done("g", "a"), hit("g", "a", "k")))
    assert [v["invariant"] for v in twice["violations"] if v["invariant"] != "I6"] == ["I3"]  # (I6: the
    # test's dispatch names no candidates)


def test_metrics_and_the_archive_count_cache_hits():
    from orchestrator.reports.metrics import compute_metrics
    from projections.archive.projector import archive_row
    from schemas import codec

    revoke = ev.CacheEntryRevoked(event_id="r", occurred_at=T0, domain="d", key="k", reason="blob missing")
    log = _log(build("g"), hit("g", "a", "k"), hit("g", "b", "k"), revoke)
    m = compute_metrics((seq, T0, e) for seq, e in log)
    assert (m["cache_hits"], m["cache_revoked"]) == (2, 1)
    row = archive_row(2, "ev.task.g.a.TaskCacheHit", codec.encode(log[1][1]), T0)
    assert (row["type"], row["graph_id"], row["task_id"]) == ("TaskCacheHit", "g", "a")


def test_subjects_and_rights():
    from orchestrator.runtime.auth import agent_user, role_permissions
    from schemas.subjects import domain_token, route

    assert route(hit("g", "a", "k")) == ("task.g.a", "ev.task.g.a.TaskCacheHit")
    revoke = ev.CacheEntryRevoked(event_id="r", occurred_at=T0, domain="feature/x y", key="k", reason="")
    assert route(revoke)[1] == f"ev.cache.{domain_token('feature/x y')}.CacheEntryRevoked"
    decider = role_permissions("decider")["publish"]["allow"]
    assert "ev.cache.>" in decider and "ev.task.>" in decider
    agent = role_permissions(agent_user("n1"))["publish"]["allow"]
    assert not any(s.startswith(("ev.cache", "ev.task.>")) or s.endswith("TaskCacheHit") for s in agent)

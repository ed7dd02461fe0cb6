"""Locality: the transfer term of node choice and the transfer rate a node learns (pure, no server)."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from orchestrator.decision.decide import DeciderConfig, Views, decide
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.transfer import (
    Need,
    fetch_for,
    fleet_rate,
    missing_bytes,
    size_words,
    task_need,
    transfer_rate,
)
from projections.decay import Decayed
from projections.node_scores.entries import NodeView
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from projections.runner import project
from schemas import events as ev
from schemas import records as evrec
from tests.unit.builders import at, completed, dispatched, graph, registered, spec, started

MB = 1_000_000


def rec(name: str, size: int) -> evrec.ArtifactRecord:
    return evrec.ArtifactRecord(path=name, digest=hashlib.sha256(name.encode()).hexdigest(), size=size)


def produced(task: str, node: str, *outputs: evrec.ArtifactRecord, t: float = 1, fetched: tuple[int, float] = (0, 0.0)):
    c = completed("g", task, node, t=t + 1)
    c = msgspec.structs.replace(c, outputs=outputs, fetched_bytes=fetched[0], fetch_seconds=fetched[1])
    return [dispatched("g", task, node, t=t), started("g", task, node, t=t), c]


def fold(*events):
    pairs = list(enumerate(events, 1))
    r = project(evolve_readiness, ReadinessView(), pairs)
    n = project(evolve_node_scores, NodeScoresView(), pairs)
    return r, n


def node_with(fetches: list[tuple[int, float]]) -> NodeView:
    view = NodeScoresView()
    events: list[object] = [registered("n1", slots=4), graph("g", *(spec(f"t{i}") for i in range(len(fetches))))]
    for i, f in enumerate(fetches):
        events += produced(f"t{i}", "n1", t=10 * i, fetched=f)
    return project(evolve_node_scores, view, list(enumerate(events, 1))).nodes["n1"]


@pytest.mark.parametrize(
    ("fetches", "prior_bps", "prior_s", "rate", "evidence"),
    [
        ([], 100 * MB, 1.0, 100 * MB, "prior"),
        ([(0, 0.0)], 100 * MB, 1.0, 100 * MB, "prior"),  # a completion that fetched nothing teaches nothing
        ([(10 * MB, 0.0)], 100 * MB, 1.0, 100 * MB, "prior"),  # nor one with no time measured
        ([(100 * MB, 9.0)], 100 * MB, 1.0, 20 * MB, "1 fetches"),  # (100 MB + 100 MB·1 s) / (9 s + 1 s)
        ([(100 * MB, 9.0)], 100 * MB, 0.0, 100 * MB / 9.0, "1 fetches"),  # no prior weight: the measured rate
        ([(50 * MB, 5.0), (50 * MB, 5.0)], 10 * MB, 1.0, 10 * MB, "2 fetches"),  # the prior agrees
    ],
)
def test_transfer_rate_is_learned_from_the_nodes_own_fetches(fetches, prior_bps, prior_s, rate, evidence):
    got, words = transfer_rate(node_with(fetches), prior_bps, prior_s)
    assert got == pytest.approx(rate, rel=1e-3)
    assert words == evidence


@pytest.mark.parametrize(
    ("fetches", "rate", "words"),
    [
        ({}, 100 * MB, "prior"),
        ({"n1": []}, 100 * MB, "prior"),
        ({"n1": [(100 * MB, 9.0)]}, 20 * MB, "all nodes' 1 fetches"),
        ({"n1": [(100 * MB, 4.0)], "n2": [(100 * MB, 5.0)]}, 30 * MB, "all nodes' 2 fetches"),  # (300 MB / 10 s)
    ],
)
def test_a_node_that_never_fetched_starts_from_what_all_nodes_measured(fetches, rate, words):
    nodes = {nid: node_with(f) for nid, f in fetches.items()}
    nodes = {nid: msgspec.structs.replace(n, node_id=nid) for nid, n in nodes.items()}
    got, said = fleet_rate(nodes, sorted(nodes), 100 * MB, 1.0)
    assert (got, said) == (pytest.approx(rate), words)
    fresh = fetch_for(Need(((50 * MB, frozenset()),), 50 * MB), NodeView(node_id="new"), (got, said), 1.0)
    assert (fresh.rate, fresh.evidence) == (got, said)


def test_older_fetches_weigh_less_than_recent_ones():
    slow_then_fast = node_with([(10 * MB, 10.0), (100 * MB, 1.0)])  # 1 MB/s, then 100 MB/s 10 s later
    n = slow_then_fast
    # decayed (half-life 30 min): the first weighs 2**(-10/1800) of the second
    w = 2 ** (-10 / 1800)
    expected = (10 * MB * w + 100 * MB) / (10.0 * w + 1.0)
    assert transfer_rate(n, 100 * MB, 0.0)[0] == pytest.approx(expected, rel=1e-9)
    assert n.fetched_bytes.n == 2


def test_a_result_from_an_attempt_that_does_not_hold_the_task_teaches_no_rate():
    c = msgspec.structs.replace(completed("g", "a", "n2", t=2), fetched_bytes=MB, fetch_seconds=1.0)
    _, n = fold(registered("n1"), registered("n2"), graph("g", spec("a")), dispatched("g", "a", "n1"), c)
    assert n.nodes["n2"].fetched_bytes == Decayed()


BIG, SMALL = rec("big.bin", 800 * MB), rec("small.txt", 2 * MB)


@pytest.mark.parametrize(
    ("name", "events", "expect"),
    [
        ("no dependency stored anything", [*produced("a", "n1")], None),
        ("an empty output weighs nothing", [*produced("a", "n1", rec("empty", 0))], None),
        (
            "the producer holds its outputs",
            [*produced("a", "n1", BIG, SMALL)],
            {"n1": 0, "n2": 802 * MB, "n3": 802 * MB},
        ),
        (
            "a node a dependent was sent to fetched them",
            [*produced("a", "n1", BIG), *produced("b", "n2", SMALL, t=3), dispatched("g", "x", "n3", t=5)],
            {"n1": 2 * MB, "n2": 800 * MB, "n3": 2 * MB},  # (x needs a's output only)
        ),
        (
            "the same blob from two dependencies counts once",
            [*produced("a", "n1", BIG), *produced("b", "n2", rec("big.bin", 800 * MB), t=3)],
            {"n1": 0, "n2": 0, "n3": 800 * MB},
        ),
    ],
)
def test_missing_bytes_per_node(name, events, expect):
    g = graph("g", spec("a"), spec("b"), spec("x", "a"), spec("c", "a", "b"))
    r, _ = fold(registered("n1"), registered("n2"), registered("n3"), g, *events)
    need = task_need(r.tasks[("g", "c")], r.tasks)
    if expect is None:
        assert need is None
        return
    assert need is not None
    assert {nid: missing_bytes(need, nid) for nid in expect} == expect


@pytest.mark.parametrize(
    ("missing", "rate_bps", "seconds"),
    [(0, 100 * MB, 0.0), (100 * MB, 100 * MB, 1.0), (1 * MB, 10 * MB, 0.1), (800 * MB, 1 * MB, 800.0)],
)
def test_fetch_seconds_are_missing_bytes_over_the_rate(missing, rate_bps, seconds):
    need = Need(((missing, frozenset({"other"})),), missing) if missing else Need(((5, frozenset({"n1"})),), 5)
    f = fetch_for(need, NodeView(node_id="n1"), (rate_bps, "prior"), 1.0)
    assert (f.missing, f.seconds) == (missing, pytest.approx(seconds))


@pytest.mark.parametrize(("n", "words"), [(0, "0 B"), (812, "812 B"), (1500, "1.5 kB"), (2.5e9, "2.5 GB")])
def test_size_words(n, words):
    assert size_words(n) == words


def _views(r, n):
    return Views(tasks=r.tasks, nodes=n.nodes, seqs={"readiness": r.seq}, types=n.types, ready=r.ready)


def test_eft_picks_the_node_that_holds_a_big_input_and_says_why():
    # n2 is twice as fast, but c's 800 MB input is on n1: at 100 MB/s that is 8 s of fetching
    g = graph("g", spec("a", estimate_s=1.0), spec("c", "a", estimate_s=10.0))
    faster = [registered("n1", slots=1), registered("n2", slots=1), g]
    r, n = fold(*faster, *produced("a", "n1", BIG))
    n.nodes["n2"] = msgspec.structs.replace(n.nodes["n2"], scores=n.nodes["n1"].scores)
    (d,) = decide(_views(r, n), at(3), DeciderConfig(node_ttl_s=1e9))
    assert d.event.node_id == "n1"
    by = {c.node_id: c.reason for c in d.event.candidates}
    assert by["n1"].startswith("finish in 10.0s: holds its inputs (800.0 MB) + 10.0s")
    assert by["n2"].startswith("finish in 18.0s: fetch 800.0 MB of 800.0 MB in 8.0s at 100.0 MB/s (prior) + 10.0s")
    assert d.event.expected_duration_s == 10.0
    assert d.event.dep_outputs == (BIG,)


def test_a_fast_link_makes_the_transfer_term_negligible():
    g = graph("g", spec("a", estimate_s=1.0), spec("c", "a", estimate_s=10.0))
    r, n = fold(registered("n1", slots=1), registered("n2", slots=1), g, *produced("a", "n1", SMALL))
    cfg = DeciderConfig(node_ttl_s=1e9, scoring=ScoringConfig(transfer_prior_bps=1e12))
    (d,) = decide(_views(r, n), at(3), cfg)
    by = {c.node_id: c.reason for c in d.event.candidates}
    assert "fetch 2.0 MB of 2.0 MB in 0.0s at 1.0 TB/s (prior)" in by["n2"]
    assert d.event.node_id == "n1"  # (equal finish: the node id breaks the tie)


def test_without_sizes_the_reasons_are_the_old_ones():
    g = graph("g", spec("a", estimate_s=1.0), spec("c", "a", estimate_s=10.0))
    r, n = fold(registered("n1", slots=1), registered("n2", slots=1), g, *produced("a", "n1"))
    (d,) = decide(_views(r, n), at(3), DeciderConfig(node_ttl_s=1e9))
    assert all("fetch" not in c.reason and "holds" not in c.reason for c in d.event.candidates)


def test_replay_reproduces_decisions_with_a_transfer_term_and_explain_shows_it():
    import dataclasses

    from orchestrator.replay.check import check
    from orchestrator.replay.replayer import Replayer
    from orchestrator.reports.explain import explain
    from orchestrator.writeside.eventlog import StoredMessage
    from schemas import codec
    from schemas import subjects as S
    from tests.unit.builders import observed

    messages: list[StoredMessage] = []

    def append(e) -> None:
        messages.append(StoredMessage(seq=len(messages) + 1, subject=S.route(e)[1], headers={}, data=codec.encode(e)))

    def round_at(t: float):
        seq = messages[-1].seq
        seqs = {"readiness": seq, "node-scores": seq}
        views = dataclasses.replace(Replayer(messages).views(seqs), seqs=seqs)
        decided = decide(views, at(t), DeciderConfig())
        for d in decided:
            append(d.event)
        return [(d.event.task_id, d.event.node_id) for d in decided]

    g = graph("g", spec("a", estimate_s=1.0), spec("c", "a", estimate_s=10.0), spec("d", "a", estimate_s=10.0))
    for e in (g, registered("n1", slots=1), registered("n2", slots=1)):
        append(e)
    assert round_at(0.5) == [("a", "n1")]
    done = msgspec.structs.replace(
        completed("g", "a", "n1", t=2), outputs=(BIG,), fetched_bytes=100 * MB, fetch_seconds=0.5
    )
    for e in (started("g", "a", "n1", t=1), done, observed("n1", t=3), observed("n2", t=3)):
        append(e)
    assert round_at(4) == [("c", "n1"), ("d", "n2")]  # d: 8 s of fetching on n2 beats waiting 10 s for n1
    report = check(messages)
    assert (report["decisions"], report["reproduced"], report["mismatches"]) == (3, 3, [])
    # d's record: n2 has not fetched yet, so it must fetch a's 800 MB at the rate all nodes measured
    # (n1's 100 MB in 0.5 s, shrunk toward 100 MB/s by 1 s: 133.3 MB/s)
    events = [(m.seq, codec.decode(m.data)) for m in messages]
    shown = explain([(q, e) for q, e in events if getattr(e, "task_id", None) == "d"])
    by = {c["node"]: c["reason"] for c in shown["decisions"][0]["candidates"]}
    assert "fetch 800.0 MB of 800.0 MB in 6.0s at 133.3 MB/s (all nodes' 1 fetches)" in by["n2"]


def test_a_round_counts_what_it_just_sent_to_a_node_as_held_there():
    # a's producer n1 drains; c and d both need a's 800 MB; k (2 slots) gets c, and for d the
    # round already counts the blob as on k (its agent fetches it once, for both)
    g = graph("g", spec("a", estimate_s=1.0), spec("c", "a", estimate_s=10.0), spec("d", "a", estimate_s=10.0))
    drain = ev.NodeDrainRequested(event_id="dr", occurred_at=at(2.5), node_id="n1", by="ops")
    nodes = (registered("n1", slots=1), registered("k", slots=2), registered("m", slots=1))
    r, n = fold(*nodes, g, *produced("a", "n1", BIG), drain)
    decided = decide(_views(r, n), at(3), DeciderConfig(node_ttl_s=1e9))
    assert [(d.event.task_id, d.event.node_id) for d in decided] == [("c", "k"), ("d", "k")]
    first, second = ({c.node_id: c.reason for c in d.event.candidates} for d in decided)
    assert first["k"].startswith("finish in 18.0s: fetch 800.0 MB")
    assert second["k"].startswith("finish in 10.0s: holds its inputs (800.0 MB)")
    assert second["m"].startswith("finish in 18.0s: fetch 800.0 MB")

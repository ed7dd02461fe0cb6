"""The content-addressed cache on a real nats-server with real agents: a graph run again with a new
graph id and the same source is all cache hits (no command runs); a changed input reruns only the
tasks that read it. And the decider's blob check against the real artifact store.

Agents do not record their outputs in ``TaskCompleted`` yet (another change wires that), so the
graph here declares inputs and no outputs: its entries reuse nothing but the success itself, and
a dependent's key changes only with its own inputs (dependencies' outputs reaching the key is
covered by tests/unit/test_decide_cache.py). The blob check is driven with completions this test
appends itself, carrying outputs whose blobs it stores (or not).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import nats

from node_agent.artifacts.digest import hash_file
from node_agent.artifacts.store import ArtifactStore
from orchestrator.cli.replay import read_messages
from orchestrator.graphs.graphfile import load_graph
from orchestrator.replay.check import check
from orchestrator.replay.verify import verify
from orchestrator.reports.queries import read_status
from orchestrator.writeside.eventlog import EventLog
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from tests.conftest import assert_eventually
from tests.integration.harness import subject_counts, submit, system

GRAPH = """
[graph]
id = "{gid}"
source = "src"

[[tasks]]
id = "read a"
command = "echo 'read a' >> {ran}"
inputs = ["a.txt"]

[[tasks]]
id = "read/b"
command = "echo read/b >> {ran}"
inputs = ["b.txt"]

[[tasks]]
id = "c:after-a"
command = "echo c:after-a >> {ran}"
depends_on = ["read a"]
inputs = ["c.txt"]

[[tasks]]
id = "d"
command = "echo d >> {ran}"
depends_on = ["read/b", "c:after-a"]
inputs = ["b.txt", "c.txt"]
"""


async def _done(url: str, graph: str) -> bool:
    nc = await nats.connect(url)
    try:
        report = await read_status(nc, graph)
    finally:
        await nc.close()
    return bool(report.graphs) and report.graphs[0]["done"]


async def _run(url: str, folder: Path, gid: str, ran: Path) -> None:
    graph_file = folder / "graph.toml"  # one file, rewritten per run (as a build tool writes it): one domain
    graph_file.write_text(GRAPH.format(gid=gid, ran=ran))
    await submit(url, load_graph(graph_file, hash_source=True))
    await assert_eventually(lambda: _done(url, gid), timeout=60, message=f"graph {gid} done")


def _ran(ran: Path) -> Counter[str]:
    return Counter(ran.read_text().splitlines()) if ran.exists() else Counter()


async def test_a_second_run_is_all_cache_hits_and_a_changed_input_reruns_only_its_readers(nats_server, tmp_path):
    url, folder, ran = nats_server.url, tmp_path / "project", tmp_path / "ran.log"
    (folder / "src").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (folder / "src" / f"{name}.txt").write_text(f"{name} 1\n")
    async with system(url, tmp_path / "work", agents=2, slots=2):
        await _run(url, folder, "build-1", ran)
        assert _ran(ran) == Counter({"read a": 1, "read/b": 1, "c:after-a": 1, "d": 1})
        await _run(url, folder, "build-2", ran)
        assert _ran(ran) == Counter({"read a": 1, "read/b": 1, "c:after-a": 1, "d": 1})  # nothing ran again
        (folder / "src" / "b.txt").write_text("b 2\n")
        await _run(url, folder, "build-3", ran)
    assert _ran(ran) == Counter({"read a": 1, "read/b": 2, "c:after-a": 1, "d": 2})
    counts = await subject_counts(url)
    names = Counter(k.rsplit("/", 1)[1] for k in counts.elements() if k.startswith(("build-2/", "build-3/")))
    assert names["TaskCacheHit"] == 4 + 2 and names["TaskDispatched"] == 2 and names["TaskStarted"] == 2
    messages = await read_messages(url)
    events = [codec.decode(m.data) for m in messages]
    misses = {e.task_id: e.cache_miss for e in events if isinstance(e, ev.TaskDispatched) and e.graph_id == "build-3"}
    assert misses == {"read/b": "changed since the last hit: sources", "d": "changed since the last hit: sources"}
    first = {e.task_id: e.cache_miss for e in events if isinstance(e, ev.TaskDispatched) and e.graph_id == "build-1"}
    assert set(first.values()) == {"no entry"}
    replayed = check(messages)
    assert replayed["decisions"] == 4 + 4 + 4 and replayed["mismatches"] == [], replayed["mismatches"][:2]
    report = verify((m.seq, e) for m, e in zip(messages, events, strict=True))
    assert report["violations"] == [], report["violations"][:3]


def _at() -> datetime:
    return datetime.now(UTC)


async def _first_run_recorded(log: EventLog, outputs: dict[str, tuple[rec.ArtifactRecord, ...]]) -> None:
    """Graph g1 whose two tasks an agent 'ran': a dispatch and a completion with outputs, appended here."""
    tasks = tuple(rec.TaskSpec(id=t, command=f"make {t}", outputs=(f"{t}.o",)) for t in outputs)
    await log.append_event(ev.GraphSubmitted(event_id="s1", occurred_at=_at(), graph_id="g1", tasks=tasks, source="f"))
    for t, outs in outputs.items():
        d = ev.TaskDispatched(event_id=f"d:{t}", occurred_at=_at(), graph_id="g1", task_id=t, node_id="n1", attempt=1,
                              command=f"make {t}")  # fmt: skip
        await log.append_event(d)
        c = ev.TaskCompleted(event_id=f"c:{t}", occurred_at=_at(), graph_id="g1", task_id=t, node_id="n1", attempt=1,
                             outcome="success", outputs=outs)  # fmt: skip
        await log.append_event(c)
    g2 = ev.GraphSubmitted(event_id="s2", occurred_at=_at(), graph_id="g2", tasks=tasks, source="f")
    await log.append_event(g2)


async def test_a_hit_whose_blob_is_missing_is_revoked_and_one_whose_blob_is_stored_is_appended(nats_server, tmp_path):
    url = nats_server.url
    kept, lost = tmp_path / "kept.o", tmp_path / "lost.o"
    kept.write_bytes(b"object code\n")
    lost.write_bytes(b"never stored\n")
    record = {
        p: rec.ArtifactRecord(path=p.name, digest=hash_file(str(p))[0], size=p.stat().st_size) for p in (kept, lost)
    }
    nc = await nats.connect(url)
    try:
        store = ArtifactStore(nc)
        await store.ensure_bucket()
        await store.put_file(kept)
        log = EventLog(nc)
        await log.ensure_stream()
        async with system(url, tmp_path / "work", agents=0):
            await _first_run_recorded(log, {"kept": (record[kept],), "lost": (record[lost],)})

            async def settled() -> list[str]:
                found = [
                    type(e).__name__
                    for _, e in await log.read_events("ev.>")
                    if isinstance(e, ev.TaskCacheHit | ev.CacheEntryRevoked)
                ]
                return found if len(found) >= 2 else []

            found = await assert_eventually(settled, timeout=30, message="a hit and a revocation")
        events = [e for _, e in await log.read_events("ev.>")]
    finally:
        await nc.close()
    assert sorted(found) == ["CacheEntryRevoked", "TaskCacheHit"]
    [hit] = [e for e in events if isinstance(e, ev.TaskCacheHit)]
    [revoked] = [e for e in events if isinstance(e, ev.CacheEntryRevoked)]
    assert (hit.graph_id, hit.task_id, hit.outputs) == ("g2", "kept", (record[kept],))
    assert (revoked.task_id, revoked.missing) == ("lost", (record[lost].digest,))
    assert "missing from the artifact store" in revoked.reason
    assert not any(isinstance(e, ev.TaskCacheHit) and e.task_id == "lost" for e in events)

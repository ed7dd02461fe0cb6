"""The whole loop on a real nats-server: submit → readiness → decide → agents run → complete."""

from __future__ import annotations

from collections import Counter

import nats

from orchestrator.reports.queries import read_status
from tests.conftest import assert_eventually
from tests.integration.harness import layered_graph, subject_counts, submit, system


async def _status(url: str, graph: str):
    nc = await nats.connect(url)
    try:
        return await read_status(nc, graph)
    finally:
        await nc.close()


async def _all_done(url: str, graph: str) -> bool:
    report = await _status(url, graph)
    return bool(report.graphs) and report.graphs[0]["done"]


async def test_two_deciders_never_dispatch_a_task_twice(nats_server, tmp_path):
    ran = tmp_path / "ran.txt"
    spec = layered_graph("g2", layers=10, width=21, command=f'echo "$NIYANTRA_TASK_ID" >> {ran}')
    assert len(spec.tasks) >= 200
    async with system(nats_server.url, tmp_path / "work", agents=3, slots=4, deciders=2):
        await submit(nats_server.url, spec)
        await assert_eventually(lambda: _all_done(nats_server.url, "g2"), timeout=120, message="graph g2 done")
    report = await _status(nats_server.url, "g2")
    assert {t["state"] for t in report.tasks} == {"succeeded"}
    runs = Counter(ran.read_text().split())
    assert runs == Counter({t.id: 1 for t in spec.tasks})
    counts = await subject_counts(nats_server.url, "ev.task.g2.>")
    for t in spec.tasks:
        assert counts[f"g2/{t.id}/TaskDispatched"] == 1, t.id
        assert counts[f"g2/{t.id}/TaskStarted"] == 1, t.id
        assert counts[f"g2/{t.id}/TaskCompleted"] == 1, t.id
    from orchestrator.cli.replay import read_messages
    from orchestrator.replay.check import check
    from orchestrator.replay.verify import verify
    from schemas import codec

    messages = await read_messages(nats_server.url)
    replayed = check(messages)  # invariant I7: every decision of both deciders reproduces byte for byte
    assert replayed["decisions"] == len(spec.tasks) and replayed["mismatches"] == [], replayed["mismatches"][:2]
    report = verify((m.seq, codec.decode(m.data)) for m in messages)
    assert report["violations"] == [], report["violations"][:3]


async def test_no_task_starts_before_its_dependencies_succeeded(nats_server, tmp_path):
    spec = layered_graph("g3", layers=4, width=5, command="true")
    async with system(nats_server.url, tmp_path / "work", agents=2, slots=3):
        await submit(nats_server.url, spec)
        await assert_eventually(lambda: _all_done(nats_server.url, "g3"), timeout=60, message="graph g3 done")
    nc = await nats.connect(nats_server.url)
    try:
        from orchestrator.writeside.eventlog import EventLog

        events = await EventLog(nc).read_events("ev.task.g3.>")
    finally:
        await nc.close()
    succeeded_at: dict[str, int] = {}
    deps = {t.id: t.depends_on for t in spec.tasks}
    for seq, e in events:
        if type(e).__name__ == "TaskStarted":
            assert all(succeeded_at.get(d, 1 << 60) < seq for d in deps[e.task_id]), e.task_id
        if type(e).__name__ == "TaskCompleted" and e.outcome == "success":
            succeeded_at[e.task_id] = seq


async def test_a_failed_task_cancels_its_dependents_and_the_graph_ends(nats_server, tmp_path):
    from orchestrator.graphs.graphfile import GraphSpec
    from schemas.records import TaskSpec

    spec = GraphSpec(
        id="g4",
        title="",
        tasks=(
            TaskSpec(id="a", command="exit 3"),
            TaskSpec(id="b", command="true", depends_on=("a",)),
            TaskSpec(id="c", command="true", depends_on=("b",)),
            TaskSpec(id="d", command="true"),
        ),
    )
    async with system(nats_server.url, tmp_path / "work", agents=1, slots=2):
        await submit(nats_server.url, spec)
        await assert_eventually(lambda: _all_done(nats_server.url, "g4"), timeout=60, message="graph g4 done")
    states = {t["id"]: (t["state"], t["exit_code"]) for t in (await _status(nats_server.url, "g4")).tasks}
    assert states == {
        "a": ("failed", 3),
        "b": ("cancelled", None),
        "c": ("cancelled", None),
        "d": ("succeeded", 0),
    }


async def test_the_write_side_aggregates_see_what_the_processes_recorded(nats_server, tmp_path):
    import asyncio

    from orchestrator.graphs.graphfile import GraphSpec
    from orchestrator.graphs.submission import graph_events
    from orchestrator.writeside.application import Orchestrator
    from schemas.records import TaskSpec
    from tests.unit.builders import T0

    spec = GraphSpec(id="g5", title="", tasks=(TaskSpec(id="ok", command="true"), TaskSpec(id="bad", command="false")))
    app = Orchestrator(env={"NIYANTRA_NATS_URL": nats_server.url})
    try:
        submitted = await asyncio.to_thread(app.submit_graph, graph_events(spec, T0, "submit:g5"))
        assert (submitted.seq, submitted.created) == (1, True)
        async with system(nats_server.url, tmp_path / "work", agents=1, slots=2):
            await assert_eventually(lambda: _all_done(nats_server.url, "g5"), timeout=60, message="graph g5 done")
        ok = await asyncio.to_thread(app.task, "g5", "ok")
        bad = await asyncio.to_thread(app.task, "g5", "bad")
        assert (ok.state, ok.node_id, ok.attempt) == ("succeeded", "node-1", 1)
        assert (bad.state, bad.attempt) == ("failed", 1)
    finally:
        app.close()

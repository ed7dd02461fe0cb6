"""`niyantra wait` and `niyantra watch` against a real server and the real pipeline: they follow
the views until the graph is done; wait exits 1 when a task did not succeed and gives up at its
timeout."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.status import follow
from orchestrator.cli.wait import wait_until_done
from orchestrator.graphs.graphfile import GraphSpec
from schemas.records import TaskSpec
from tests.integration.harness import submit, system

runner = CliRunner()


async def test_wait_follows_the_view_until_the_graph_is_done(nats_server, tmp_path):
    spec = GraphSpec(
        id="w",
        title="",
        tasks=(
            TaskSpec(id="A", command="sleep 0.5"),
            TaskSpec(id="B", command="exit 3", depends_on=("A",), max_attempts=1),
        ),
    )
    seen = []
    async with system(nats_server.url, tmp_path / "work", agents=1, slots=1):
        await submit(nats_server.url, spec)
        report = await wait_until_done(nats_server.url, "w", 60, seen.append)
        assert {t["id"]: t["state"] for t in report.tasks} == {"A": "succeeded", "B": "failed"}
        assert len(seen) >= 2 and seen[-1] is report  # it showed earlier states before the last
        assert [r.seq for r in seen] == sorted(r.seq for r in seen)
        result = await asyncio.to_thread(runner.invoke, app, ["wait", "--graph", "w", "--nats-url", nats_server.url])
    assert result.exit_code == 1, result.output  # B failed
    assert "w: Total tasks: 2 | Completed: 1" in result.output


def test_wait_gives_up_at_its_timeout(nats_server):
    result = runner.invoke(app, ["wait", "--graph", "nope", "--timeout", "0.5", "--nats-url", nats_server.url])
    assert result.exit_code == 1, result.output
    assert "not done after 0.5s" in result.output


async def test_watch_until_done_follows_the_snapshot_until_the_graph_ends(nats_server, tmp_path):
    spec = GraphSpec(
        id="v",
        title="",
        tasks=(TaskSpec(id="A", command="sleep 0.5"), TaskSpec(id="B", command="true", depends_on=("A",))),
    )
    seen = []
    async with system(nats_server.url, tmp_path / "work", agents=1, slots=1):
        await submit(nats_server.url, spec)
        await asyncio.wait_for(follow(nats_server.url, "v", 0.1, True, seen.append), 60)
    [last] = seen[-1]
    assert last["totals"]["completed"] == 2 and [t["state"] for t in last["tasks"]] == ["succeeded", "succeeded"]
    assert len(seen) >= 2  # earlier pictures, from the same mirrors, before the end


async def test_wait_judges_a_view_batch_only_once_its_checkpoint_is_in(nc):
    """A projector writes a batch's keys, then its checkpoint. A wait that saw the graph entry
    'done' before the batch's task entries reported tasks as they were (a cached build of zlib:
    'Completed: 41 | Failed: 0' and '5 task(s) did not succeed'); it waits for the checkpoint."""
    import msgspec

    from orchestrator.cli.wait import wait_on
    from projections.buckets import ensure_bucket
    from projections.fold import Checkpoint
    from projections.readiness.entries import GraphView, TaskView
    from schemas import subjects as S

    await ensure_bucket(nc, S.KV_READINESS)
    kv = await nc.jetstream().key_value(S.KV_READINESS)
    enc = msgspec.json.encode
    await kv.put(S.readiness_key("g", "a"), enc(TaskView(graph_id="g", task_id="a", command="x", state="ready")))
    await kv.put(S.graph_key("g"), enc(GraphView(graph_id="g", total=1, counts={"succeeded": 1})))
    shown = asyncio.Event()

    def show(_report) -> None:
        shown.set()

    waiting = asyncio.create_task(wait_on(nc, "g", 30, show))
    await asyncio.wait_for(shown.wait(), 30)  # it has read the view (mid-batch: no checkpoint yet)
    await kv.put(S.readiness_key("g", "a"), enc(TaskView(graph_id="g", task_id="a", command="x", state="succeeded")))
    await kv.put(S.CHECKPOINT_KEY, enc(Checkpoint(seq=3)))
    report = await asyncio.wait_for(waiting, 30)
    assert [(t["id"], t["state"]) for t in report.tasks] == [("a", "succeeded")]

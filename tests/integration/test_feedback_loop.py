"""The feedback loop on a real system: a task type that keeps failing on the only node is
flagged, the next task of that type is escalated to approval (why says so), an approval lets it
run (its dispatch records it); a success below the quality threshold is partial. Replay,
verify and a rebuild of every view agree with what ran."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import nats
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.why import read_views
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.why import why
from orchestrator.graphs.graphfile import GraphSpec
from projections.runner import run_projector
from schemas.records import TaskSpec
from tests.conftest import assert_eventually
from tests.integration.harness import subject_counts, submit, system, task_status

runner = CliRunner()


async def _why(url: str, graph: str, task: str) -> str:
    nc = await nats.connect(url)
    try:
        views = await read_views(nc)
    finally:
        await nc.close()
    t = views.tasks.get((graph, task))
    return why(t, views, datetime.now(UTC), DeciderConfig())["headline"] if t else ""


async def _snapshot(url: str, expected: str) -> str:
    """The snapshot's text when it contains ``expected``, else ""."""
    out = (await asyncio.to_thread(runner.invoke, app, ["snapshot", "--nats-url", url])).output
    return out if expected in out else ""


async def _ended(url: str, graph: str, tasks: list[str]) -> bool:
    states = [(await task_status(url, graph, t)).get("state") for t in tasks]
    return all(s in ("succeeded", "failed") for s in states)


async def test_flagged_type_escalates_to_approval_and_low_quality_is_partial(nats_server, tmp_path):
    url = nats_server.url
    broken = GraphSpec(
        id="b",
        title="broken",
        tasks=tuple(TaskSpec(id=f"f{i}", type="compile", command=f"echo 'cc: fatal {i}' >&2; exit 3") for i in range(3))
        + (TaskSpec(id="q", command='echo 0.3 > "$NIYANTRA_QUALITY_FILE"'),),
    )
    async with system(url, tmp_path / "work", agents=1, slots=1) as stop:
        confidence = asyncio.create_task(run_projector("confidence", url, stop))
        await submit(url, broken)
        await assert_eventually(lambda: _ended(url, "b", ["f0", "f1", "f2", "q"]), timeout=60, message="b ended")
        q = await task_status(url, "b", "q")
        assert (q["state"], q["reason"]) == ("succeeded", "partial: quality 0.30 below the threshold 0.70")

        await submit(url, GraphSpec(id="g", title="after", tasks=(TaskSpec(id="a", type="compile", command="true"),)))

        async def escalated() -> bool:
            return (await _why(url, "g", "a")).startswith("escalated to approval: type compile is flagged")

        await assert_eventually(escalated, timeout=30, message="g/a escalated")
        assert (await task_status(url, "g", "a"))["state"] == "ready"  # waiting for a person, not dispatched

        async def recorded() -> bool:  # the decider records why it waits, at once
            return (await subject_counts(url, "ev.unschedulable.>"))["g/a/Unschedulable"] == 1

        await assert_eventually(recorded, timeout=30, message="Unschedulable for g/a")

        async def shown() -> str:  # once the confidence projector has folded q (0.3 < 0.70: loosened a step)
            out = (await asyncio.to_thread(runner.invoke, app, ["snapshot", "--nats-url", url])).output
            return out if "feedback  quality threshold 0.68 · 1 flagged" in out else ""

        snapshot = await assert_eventually(shown, timeout=30, message="snapshot shows the threshold and the flag")
        assert "flagged type compile on node-1" in snapshot  # the same snapshot: a second one may be mid-write
        ok = await asyncio.to_thread(runner.invoke, app, ["approve", "g/a", "--by", "ana", "--nats-url", url])
        assert ok.exit_code == 0, ok.output
        await assert_eventually(lambda: _ended(url, "g", ["a"]), timeout=30, message="g/a ran after approval")
        await assert_eventually(  # a's success on node-1 cleared the streak
            lambda: _snapshot(url, "feedback  quality threshold 0.68 · 0 flagged"), timeout=30, message="flag cleared"
        )
    await confidence

    explained = await asyncio.to_thread(runner.invoke, app, ["explain", "g/a", "--json", "--nats-url", url])
    assert explained.exit_code == 0, explained.output
    assert "and approved by ana" in explained.output
    replay = await asyncio.to_thread(runner.invoke, app, ["replay", "--check", "--nats-url", url])
    assert replay.exit_code == 0, replay.output
    views = await asyncio.to_thread(runner.invoke, app, ["views", "rebuild", "--verify", "--nats-url", url])
    assert views.exit_code == 0, views.output
    verify = await asyncio.to_thread(runner.invoke, app, ["verify", "--nats-url", url])
    assert verify.exit_code == 0, verify.output

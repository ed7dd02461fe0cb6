"""`niyantra why`, `pause` and `resume` (registered on `orchestrator.cli.app.app`)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import typer
from rich.markup import escape

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, _connect, app, console, fail
from schemas import subjects as S


async def start_mirrors(nc: Any) -> list[Any]:
    """Mirrors of the three views the decider reads (readiness, node-scores, confidence), started
    (their values loaded, kept current until stopped)."""
    from projections.buckets import ensure_bucket
    from projections.confidence.fold import ConfidenceSummary
    from projections.node_scores.fold import NodeView, TypeEstimate
    from projections.node_scores.patterns import PatternView
    from projections.readiness.entries import MIRROR_TYPES
    from projections.viewmirror import ViewMirror

    mirrors = [
        ViewMirror(nc, S.KV_READINESS, dict(MIRROR_TYPES)),
        ViewMirror(nc, S.KV_NODE_SCORES, {"node": NodeView, "type": TypeEstimate, "pattern": PatternView}),
        ViewMirror(nc, S.KV_CONFIDENCE, {"summary": ConfidenceSummary}),
    ]
    for m in mirrors:
        await ensure_bucket(nc, m.bucket)
        await m.start()
    return mirrors


async def read_views(nc: Any) -> Any:
    """The decide input from the live KV views (as the decider sees them)."""
    from orchestrator.processes.deciderviews import build_views

    mirrors = await start_mirrors(nc)
    for m in mirrors:
        await m.stop()
    return build_views(mirrors[0], mirrors[1], mirrors[2])


@app.command()
def why(
    task: Annotated[str, typer.Argument(help="TASK or GRAPH/TASK.")],
    *,
    graph: Annotated[str | None, typer.Option("--graph", help="Graph of the task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Why a task is not running right now: one line, then the detail."""
    from orchestrator.cli.taskref import among, resolve
    from orchestrator.decision.decide import DeciderConfig
    from orchestrator.decision.why import why as explain_why

    async def go() -> Any:
        nc = await _connect(nats_url)
        try:
            return await read_views(nc)
        finally:
            await nc.close()

    views = asyncio.run(go())
    try:
        key = resolve(task, graph, among(views.tasks))
    except LookupError as e:
        raise fail(f"{e} in the readiness view") from e
    now = datetime.now(UTC)  # the CLI is a shell: it reads the clock and passes it in
    report = explain_why(views.tasks[key], views, now, DeciderConfig())
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    console.print(f"[bold]{report['graph']}/{report['task']}[/bold] ({report['state']}): {escape(report['headline'])}")
    for line in report["details"]:
        console.print(f"  {escape(line)}", highlight=False)


def _autonomy(level: str, by: str, reason: str, url: str) -> int:
    from schemas.events import AutonomyChanged
    from schemas.records import AutonomyLevel

    event = AutonomyChanged(
        event_id=f"autonomy:{uuid.uuid4().hex}",
        occurred_at=datetime.now(UTC),
        level=cast(AutonomyLevel, level),
        by=by,
        reason=reason or f"{'paused' if level == 'supervised' else 'resumed'} by {by}",
    )
    return _append(event, url)


def _append(event: Any, url: str) -> int:
    from orchestrator.writeside.eventlog import EventLog

    async def go() -> int:
        nc = await _connect(url)
        try:
            log = EventLog(nc)
            await log.ensure_stream()
            return await log.append_event(event)
        finally:
            await nc.close()

    return asyncio.run(go())


def _graph_pause(graph: str, paused: bool, by: str, reason: str, url: str) -> int:
    """A person's `GraphPaused` or `GraphResumed` of a graph (``*``: of every graph)."""
    from schemas import actions as act
    from schemas.errors import InvalidId
    from schemas.ids import check_user_id

    try:
        gid = "" if graph == "*" else check_user_id("graph id", graph)
    except InvalidId as e:
        raise fail(str(e)) from e
    kind = act.GraphPaused if paused else act.GraphResumed
    verb = "paused" if paused else "resumed"
    event = kind(
        event_id=f"{verb}:{uuid.uuid4().hex}",
        occurred_at=datetime.now(UTC),
        graph_id=gid,
        by=by,
        reason=reason or f"{verb} by {by}",
    )
    return _append(event, url)


By = Annotated[str, typer.Option("--by", envvar="USER", help="Who (recorded in the event).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")]


@app.command()
def pause(
    graph: Annotated[str | None, typer.Argument(help="Only this graph's dispatches ('*': every graph's).")] = None,
    *,
    by: By,
    reason: Reason = "",
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Pin autonomy to supervised (nothing is dispatched without an approval until `resume`), or
    with GRAPH pause that graph's new dispatches until `resume GRAPH`."""
    if not by.strip():
        raise fail("--by must name who pauses")
    if graph is not None:
        seq = _graph_pause(graph, True, by, reason, nats_url)
        console.print(f"dispatches of {graph} paused by {by} (seq {seq})")
        return
    seq = _autonomy("supervised", by, reason, nats_url)
    console.print(f"autonomy paused (supervised) by {by} (seq {seq})")


@app.command()
def resume(
    graph: Annotated[str | None, typer.Argument(help="Resume this graph's dispatches ('*': every graph's).")] = None,
    *,
    by: By,
    reason: Reason = "",
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Clear a pause; confidence is raised to the full threshold (you vouch), so work runs again.
    With GRAPH: lift that graph's dispatch pause (on its failure rate, or a person's)."""
    if not by.strip():
        raise fail("--by must name who resumes")
    if graph is not None:
        seq = _graph_pause(graph, False, by, reason, nats_url)
        console.print(f"dispatches of {graph} resumed by {by} (seq {seq})")
        return
    seq = _autonomy("full", by, reason, nats_url)
    console.print(f"autonomy resumed by {by} (seq {seq})")

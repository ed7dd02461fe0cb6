"""`niyantra` commands about graphs: validate, submit, and the human decisions on tasks.

Registered on the app of `orchestrator.cli.app` when `orchestrator.cli.main` imports it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, app, console, err, fail
from orchestrator.errors import GraphFileError, OrchestratorError
from orchestrator.graphs.validation import DEFAULT_MAX_BYTES, DEFAULT_MAX_TASKS, GraphSpec, Limits
from orchestrator.graphs.wfformat import DEFAULT_TEMPLATE, WfOptions
from schemas.errors import SchemaError

T = TypeVar("T")
MaxTasks = Annotated[int, typer.Option("--max-tasks", help="Refuse graphs with more tasks.")]
MaxBytes = Annotated[int, typer.Option("--max-bytes", help="Refuse files larger than this (inflated).")]
WfCommand = Annotated[
    str, typer.Option("--wf-command", help="WfFormat: command template ({id} {name} {type} {runtime} {seconds}).")
]
WfScale = Annotated[float, typer.Option("--wf-scale", help="WfFormat: seconds = runtime × scale (also estimates).")]
GraphId = Annotated[str | None, typer.Option("--graph-id", help="Graph id to use instead of the file's.")]
By = Annotated[str, typer.Option("--by", envvar="USER", help="Who decides (recorded in the event).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")]
GraphOpt = Annotated[str | None, typer.Option("--graph", help="Graph of the task (needed if ids repeat).")]


def _load(
    file: Path,
    max_tasks: int,
    max_bytes: int,
    wf_command: str,
    wf_scale: float,
    graph_id: str | None,
    hash_source: bool = False,
) -> Any:
    from orchestrator.graphs.graphfile import load_graph

    limits, wf = Limits(max_tasks=max_tasks, max_bytes=max_bytes), WfOptions(wf_command, wf_scale)
    spec = load_graph(file, limits, wf, hash_source=hash_source)
    if graph_id:
        spec = dataclasses.replace(spec, id=graph_id)
    return spec


def _submission(origin: str, load: Callable[[], GraphSpec]) -> tuple[GraphSpec, Any]:
    """The spec ``load`` returns and its submission events (idempotency key ``origin:graph:uuid``);
    a bad file prints its problems and exits 2, any other refusal is one line."""
    from orchestrator.graphs.submission import graph_events

    try:
        spec = load()
        key = f"{origin}:{spec.id}:{uuid.uuid4().hex}"
        return spec, graph_events(spec, datetime.now(UTC), key, os.environ.get("USER", ""))
    except GraphFileError as e:
        _print_problems(e)
        raise typer.Exit(2) from e
    except (OrchestratorError, SchemaError) as e:
        raise fail(str(e)) from e


def _print_problems(e: GraphFileError) -> None:
    for problem in e.problems:
        err.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False)
    err.print(f"{len(e.problems)} problem(s) in {e.path}; nothing was written", highlight=False)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"


@app.command()
def validate(
    file: Path,
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    max_tasks: MaxTasks = DEFAULT_MAX_TASKS,
    max_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    wf_command: WfCommand = DEFAULT_TEMPLATE,
    wf_scale: WfScale = 1.0,
    graph_id: GraphId = None,
) -> None:
    """Check a graph file offline (TOML, JSON or WfCommons WfFormat): exit 0 if valid, 2 with every problem."""
    from orchestrator.graphs.shape import graph_shape

    try:
        spec = _load(file, max_tasks, max_bytes, wf_command, wf_scale, graph_id)
    except GraphFileError as e:
        if as_json:
            problems = [p.to_json() if hasattr(p, "to_json") else {"text": str(p)} for p in e.problems]
            sys.stdout.write(json.dumps({"ok": False, "file": str(file), "problems": problems}, indent=2) + "\n")
            raise typer.Exit(2) from e
        _print_problems(e)
        raise typer.Exit(2) from e
    shape = graph_shape({t.id: t.depends_on for t in spec.tasks}, {t.id: t.estimate_s for t in spec.tasks})
    if as_json:
        out = {"ok": True, "file": str(file), "graph": spec.id, "problems": [], **shape.__dict__}
        out["critical_path"] = list(shape.critical_path)
        out["rules"], out["generation_limit"] = [r.name for r in spec.rules], spec.generation_limit
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    unest = f" ({shape.unestimated} tasks without estimate counted as 0s)" if shape.unestimated else ""
    console.print(f"{file}: valid graph {spec.id!r}")
    console.print(f"  tasks {shape.tasks} | edges {shape.edges} | depth {shape.depth}")
    path = " -> ".join(shape.critical_path) if len(shape.critical_path) <= 8 else f"{len(shape.critical_path)} tasks"
    console.print(f"  critical path {_duration(shape.critical_path_s)}{unest}: {escape(path)}", highlight=False)
    if spec.rules:
        names = ", ".join(r.name for r in spec.rules)
        console.print(f"  rules {len(spec.rules)} ({escape(names)}), generation limit {spec.generation_limit}")


@app.command()
def submit(
    file: Path,
    *,
    nats_url: NatsUrl = DEFAULT_URL,
    max_tasks: MaxTasks = DEFAULT_MAX_TASKS,
    max_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    wf_command: WfCommand = DEFAULT_TEMPLATE,
    wf_scale: WfScale = 1.0,
    graph_id: GraphId = None,
) -> None:
    """Validate a graph file and submit it atomically; the same file twice is accepted once."""
    spec, events = _submission(
        "submit", lambda: _load(file, max_tasks, max_bytes, wf_command, wf_scale, graph_id, hash_source=True)
    )
    store_source(nats_url, spec)
    done = _with_app(nats_url, lambda a: a.submit_graph(events))
    if done.created:
        console.print(f"submitted graph {spec.id}: {len(spec.tasks)} tasks (seq {done.seq})")
    else:
        console.print(f"graph {spec.id} was already submitted with the same content; nothing written")


def store_source(nats_url: str, spec: GraphSpec) -> None:
    """Put the graph's source blobs and manifest into the artifact store before its submission is
    appended (`orchestrator.writeside.sources`); any failure is one line, exit 2, nothing appended."""
    if not spec.source_tree:
        return
    from orchestrator.writeside.sources import store_source_sync

    try:
        stored = store_source_sync(nats_url, spec)
    except Exception as e:  # noqa: BLE001 -- nats-py's connection errors are of many types: one line
        raise _store_failed(nats_url, spec, e) from e
    _said(spec, stored)


async def store_source_on(nc: Any, nats_url: str, spec: GraphSpec) -> None:
    """`store_source` on an open connection (`niyantra build` uses one for all its steps)."""
    if not spec.source_tree:
        return
    from orchestrator.writeside.sources import store_source as put

    try:
        stored = await put(nc, spec)
    except Exception as e:  # noqa: BLE001 -- as in store_source
        raise _store_failed(nats_url, spec, e) from e
    _said(spec, stored)


def _store_failed(nats_url: str, spec: GraphSpec, e: Exception) -> typer.Exit:
    from node_agent.errors import AgentError

    if isinstance(e, AgentError | OSError | ValueError):
        return fail(f"cannot store the source of graph {spec.id}: {e}; nothing was submitted")
    return fail(f"cannot store the source of graph {spec.id} at {nats_url}: {e!r}; nothing was submitted")


def _said(spec: GraphSpec, stored: Any) -> None:
    err.print(f"source of {spec.id}: {stored.blobs} blobs, {stored.uploaded} sent ({stored.bytes_sent:,} bytes)")


def _with_app(nats_url: str, command: Callable[[Any], T]) -> T:
    """Run one command on the write-side application; errors become one line and exit 2."""
    from eventsourcing.persistence import OperationalError

    from orchestrator.writeside.application import Orchestrator

    try:
        application = Orchestrator(env={"NIYANTRA_NATS_URL": nats_url})
    except OperationalError as e:
        raise fail(f"cannot connect to NATS at {nats_url}: {e}") from e
    try:
        return command(application)
    except GraphFileError as e:
        _print_problems(e)
        raise typer.Exit(2) from e
    except OrchestratorError as e:
        raise fail(str(e)) from e
    except OperationalError as e:
        raise fail(f"cannot write to NATS at {nats_url}: {e}") from e
    finally:
        application.close()


def _locate(application: Any, task: str, graph: str | None) -> tuple[str, str]:
    """The (graph, task) a user means: ``graph/task``, ``--graph``, or the one graph with that task."""
    from orchestrator.cli.taskref import readings, resolve
    from orchestrator.reports.queries import graph_ids

    url = application.env.get("NIYANTRA_NATS_URL") or DEFAULT_URL
    known = [graph] if graph is not None else asyncio.run(graph_ids(url))

    def found(g: str | None, t: str) -> list[tuple[str, str]]:
        graphs = ((k, application.graph_or_none(k)) for k in known if g is None or k == g)
        return [(k, t) for k, state in graphs if state is not None and t in state.tasks]

    try:
        return resolve(task, graph, found)
    except LookupError as e:
        named = [g for g, _ in readings(task, graph) if g is not None]
        missing = [g for g in named if application.graph_or_none(g) is None]
        raise OrchestratorError(f"{e}: no graph {missing[0]!r}" if named and missing == named else str(e)) from e


def _now_id(kind: str) -> tuple[datetime, str]:
    return datetime.now(UTC), f"{kind}:{uuid.uuid4().hex}"


def _judge(verb: str, task: str, by: str, reason: str, graph: str | None, nats_url: str) -> None:
    """Approve or reject (``verb``) a tier-3 task awaiting approval, and say what was recorded."""

    def go(a: Any) -> tuple[str, str, int]:
        g, t = _locate(a, task, graph)
        return g, t, getattr(a, verb)(g, t, by, reason, *_now_id(verb))

    g, t, seq = _with_app(nats_url, go)
    console.print(f"{verb.removesuffix('e')}ed {g}/{t} by {by} (seq {seq})")


@app.command()
def approve(task: str, *, by: By, reason: Reason = "", graph: GraphOpt = None, nats_url: NatsUrl = DEFAULT_URL) -> None:
    """Approve a tier-3 task that awaits approval (recorded with who and why)."""
    _judge("approve", task, by, reason, graph, nats_url)


@app.command()
def reject(task: str, *, by: By, reason: Reason = "", graph: GraphOpt = None, nats_url: NatsUrl = DEFAULT_URL) -> None:
    """Reject a tier-3 task that awaits approval; it ends cancelled."""
    _judge("reject", task, by, reason, graph, nats_url)


@app.command()
def cancel(
    target: Annotated[str, typer.Argument(help="GRAPH, GRAPH/TASK, or TASK (with --graph if ambiguous).")],
    *,
    by: By,
    reason: Reason = "",
    graph: GraphOpt = None,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Cancel a graph (every unfinished task) or one task; running attempts are killed by their agents."""

    def go(a: Any) -> str:
        now, eid = _now_id("cancel")
        if graph is None and a.graph_or_none(target) is not None:
            a.cancel_graph(target, by, reason, now, eid)
            return f"graph {target}"
        g, t = _locate(a, target, graph)
        a.cancel_task(g, t, by, reason, now, eid)
        return f"task {g}/{t}"

    what = _with_app(nats_url, go)
    console.print(f"cancelled {what} by {by}")

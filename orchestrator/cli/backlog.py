"""`niyantra backlog add FILE --priority N` and `niyantra backlog list` (see `orchestrator.decision.backlog`).

Registered on the app of `orchestrator.cli.app` when `orchestrator.cli.main` imports it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, _connect, app, console
from orchestrator.cli.graph import MaxBytes, MaxTasks, _load, _submission, _with_app, store_source
from orchestrator.graphs.validation import DEFAULT_MAX_BYTES, DEFAULT_MAX_TASKS
from orchestrator.graphs.wfformat import DEFAULT_TEMPLATE

backlog_app = typer.Typer(help="Graphs that wait until nothing else is ready (taken by the decider).")
app.add_typer(backlog_app, name="backlog")


@backlog_app.command("add")
def add(
    file: Path,
    *,
    priority: Annotated[int, typer.Option("--priority", help="Higher is taken first; ties go to the oldest.")] = 0,
    nats_url: NatsUrl = DEFAULT_URL,
    max_tasks: MaxTasks = DEFAULT_MAX_TASKS,
    max_bytes: MaxBytes = DEFAULT_MAX_BYTES,
) -> None:
    """Validate a graph file and put it in the backlog: submitted, but nothing runs until the decider takes it."""
    spec, events = _submission(
        "backlog",
        lambda: dataclasses.replace(
            _load(file, max_tasks, max_bytes, DEFAULT_TEMPLATE, 1.0, None, hash_source=True),
            backlog_priority=priority,
        ),
    )
    store_source(nats_url, spec)
    done = _with_app(nats_url, lambda a: a.submit_graph(events))
    if done.created:
        console.print(
            f"backlog: graph {spec.id} added with priority {priority}: {len(spec.tasks)} tasks (seq {done.seq})"
        )
    else:
        console.print(f"graph {spec.id} was already submitted with the same content; nothing written")


async def _graphs(url: str) -> list[Any]:
    from projections.buckets import ensure_bucket
    from projections.readiness.fold import GraphView
    from projections.viewmirror import ViewMirror
    from schemas import subjects as S

    nc = await _connect(url)
    try:
        await ensure_bucket(nc, S.KV_READINESS)
        mirror = ViewMirror(nc, S.KV_READINESS, {"graph": GraphView})
        await mirror.start()
        await mirror.stop()
    finally:
        await nc.close()
    return [v for v in mirror.values.values() if isinstance(v, GraphView) and v.backlog_priority is not None]


@backlog_app.command("list")
def list_backlog(
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Backlog graphs: waiting ones in the order the decider takes them, then those taken."""
    from orchestrator.decision.backlog import waiting

    graphs = asyncio.run(_graphs(nats_url))
    by_id = {g.graph_id: g for g in graphs}
    order = waiting(by_id) + sorted((g for g in graphs if g.backlog_taken), key=lambda g: g.graph_seq)
    rows = [
        {
            "graph": g.graph_id,
            "priority": g.backlog_priority,
            "tasks": g.total,
            "state": "taken" if g.backlog_taken else "waiting",
            "done": g.done,
            "title": g.title,
        }
        for g in order
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        console.print("the backlog is empty")
        return
    table = Table("graph", "priority", "tasks", "state", "title")
    for r in rows:
        state = r["state"] + (" (done)" if r["done"] and r["state"] == "taken" else "")
        table.add_row(r["graph"], str(r["priority"]), str(r["tasks"]), state, escape(r["title"]))
    console.print(table)

"""`niyantra status`, `snapshot` and `watch`: the status table (`render_status`, `totals_line`) and
the article's status tree, once or live."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from orchestrator.cli.app import DEFAULT_URL, STATE_STYLE, LazyLive, NatsUrl, _connect, app, console, fail
from orchestrator.errors import OrchestratorError

GraphOpt = Annotated[str | None, typer.Option("--graph", help="Only this graph.")]


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def render(graphs: list[dict[str, Any]]) -> Tree:
    """The snapshot as a rich tree: graph → tasks with [STATE], times, blockers, node and why."""
    from orchestrator.reports.snapshot import totals_text

    root = Tree("[bold]niyantra[/bold]")
    for g in graphs:
        branch = root.add(f"[bold]{g['graph']}[/bold]  {totals_text(g)}")
        for t in g["tasks"]:
            style = STATE_STYLE.get(t["state"], "")
            parts = [f"[{style}][{t['state'].upper()}][/{style}] {escape(t['id'])} {escape(t['title'] or '')}"]
            if t["depends_on"]:
                parts.append(f"[dim]← {', '.join(t['depends_on'])}[/dim]")
            if t["node"] and t["state"] in ("dispatched", "running", "succeeded", "failed"):
                parts.append(f"on {t['node']}")
            if t["elapsed_s"] is not None:
                parts.append(f"{_fmt_s(t['elapsed_s'])} of ~{_fmt_s(t['estimate_s'])}")
            elif t["state"] in ("ready", "pending"):
                parts.append(f"~{_fmt_s(t['estimate_s'])}")
            if t["waiting_for"]:
                parts.append(
                    "waiting for " + ", ".join(f"{w['id']} (~{_fmt_s(w['expected_wait_s'])})" for w in t["waiting_for"])
                )
            if t["scheduled_node"]:
                parts.append(f"next: {t['scheduled_node']}")
            if t["priority"] is not None:
                parts.append(f"priority {t['priority']}")
            if t.get("generated"):
                parts.append(f"[magenta]generated: {escape(t['generated'])}[/magenta]")
            line = "  ".join(parts)
            if t.get("why") and not t["waiting_for"] and not t["scheduled_node"]:
                line += f"  [dim]{escape(t['why'])}[/dim]"
            branch.add(line)
    return root


def _render_careful(root: Tree, fb: dict[str, Any]) -> None:
    """Careful mode's line under the graphs, while it lasts."""
    if fb.get("careful"):
        root.add(f"[yellow]{escape(fb['careful'])}[/yellow]")


def _render_feedback(root: Tree, fb: dict[str, Any]) -> None:
    """The feedback loop's state under the graphs: 'quality threshold 0.72 · 2 flagged', then each
    flagged pattern."""
    q = fb["quality_threshold"]
    flagged = fb["flagged"]
    head = (f"quality threshold {q:.2f}" if q is not None else "quality threshold ?") + f" · {len(flagged)} flagged"
    branch = root.add(f"[dim]feedback[/dim]  {head}")
    for p in flagged:
        what = f"type {p['type']} on {p['node']}" if p["kind"] == "type×node" else f"command {p['command']!r}"
        sig = f" with {p['signature']!r}" if p["kind"] != "type×node" else ""
        branch.add(f"[yellow]flagged[/yellow] {escape(what)}{escape(sig)}: {escape(p['what'])}")


async def _snapshot(url: str, graph: str | None, with_feedback: bool = False) -> Any:
    from orchestrator.cli.why import read_views
    from orchestrator.decision.decide import DeciderConfig
    from orchestrator.reports.snapshot import feedback
    from orchestrator.reports.snapshot import snapshot as build

    nc = await _connect(url)
    try:
        views = await read_views(nc)
    finally:
        await nc.close()
    now = datetime.now(UTC)  # the shell reads the clock
    graphs = build(views, now, DeciderConfig(), graph)
    return (graphs, feedback(views, now, DeciderConfig())) if with_feedback else graphs


def render_status(report: Any) -> Table:
    """A rich table of the status report."""
    table = Table(title=f"niyantra status (seq {report.seq})")
    for col in ("graph", "task", "state", "node", "try", "title / waiting for"):
        table.add_column(col)
    for t in report.tasks:
        style = STATE_STYLE.get(t["state"], "")
        detail = t["title"] or ""
        if t["waiting_for"]:
            detail = f"{detail}  [dim](waiting for {', '.join(t['waiting_for'])})[/dim]"
        if t["reason"]:
            detail = f"{detail}  [dim]{t['reason']}[/dim]"
        table.add_row(
            t["graph"],
            t["id"],
            f"[{style}]{t['state'].upper()}[/{style}]",
            t["node"] or "",
            str(t["attempt"] or ""),
            detail,
        )
    return table


def totals_line(g: dict[str, Any]) -> str:
    """The article's totals line for one graph."""
    c = g["counts"]
    return (
        f"{g['id']}: Total tasks: {g['total']} | Completed: {c.get('succeeded', 0)} | Running: "
        f"{c.get('running', 0) + c.get('dispatched', 0)} | Ready: {c.get('ready', 0)} | Blocked: "
        f"{c.get('pending', 0)} | Failed: {c.get('failed', 0) + c.get('cancelled', 0)}"
    )


def _status(url: str, graph: str | None) -> Any:
    from orchestrator.reports.queries import read_status

    async def go() -> Any:
        nc = await _connect(url)
        try:
            return await read_status(nc, graph)
        finally:
            await nc.close()

    try:
        return asyncio.run(go())
    except OrchestratorError as e:
        raise fail(str(e)) from e


@app.command()
def status(
    *,
    graph: Annotated[str | None, typer.Option(help="Only this graph.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """The article's snapshot: every task's state, times, blockers, next node, priority (--json: rows)."""
    if as_json:
        import msgspec

        sys.stdout.write(msgspec.json.encode(_status(nats_url, graph)).decode() + "\n")
        return
    graphs, fb = asyncio.run(_snapshot(nats_url, graph, with_feedback=True))
    tree = render(graphs)
    _render_careful(tree, fb)
    console.print(tree)


@app.command()
def snapshot(
    *,
    graph: GraphOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """The article's snapshot: a tree of tasks with state, times, blockers, scheduled node, priority."""
    graphs, fb = asyncio.run(_snapshot(nats_url, graph, with_feedback=True))
    if as_json:
        sys.stdout.write(json.dumps(graphs, indent=2) + "\n")
        return
    tree = render(graphs)
    _render_careful(tree, fb)
    _render_feedback(tree, fb)
    console.print(tree)


def _all_done(graphs: list[dict[str, Any]]) -> bool:
    """Pure: every graph shown has ended (and there is at least one)."""
    return bool(graphs) and all(
        g["totals"]["completed"] + g["totals"]["failed"] == g["totals"]["total"] for g in graphs
    )


async def follow(
    url: str, graph: str | None, interval: float, until_done: bool, show: Callable[[list[dict[str, Any]]], None]
) -> None:
    """``show`` the snapshot every ``interval`` seconds from one connection and one mirror of each
    view kept current for the whole watch (not every view read again each time); returns once
    every graph is done when ``until_done``."""
    from orchestrator.cli.why import start_mirrors
    from orchestrator.decision.decide import DeciderConfig
    from orchestrator.processes.deciderviews import build_views
    from orchestrator.reports.snapshot import snapshot as build

    nc = await _connect(url)
    mirrors: list[Any] = []
    try:
        mirrors = await start_mirrors(nc)
        while True:
            now = datetime.now(UTC)  # the shell reads the clock
            graphs = build(build_views(mirrors[0], mirrors[1], mirrors[2]), now, DeciderConfig(), graph)
            show(graphs)
            if until_done and mirrors[0].consistent and _all_done(graphs):  # not mid-batch (see wait)
                return
            await asyncio.sleep(interval)
    finally:
        for m in mirrors:
            await m.stop()
        await nc.close()


@app.command()
def watch(
    *,
    graph: GraphOpt = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    until_done: Annotated[bool, typer.Option("--until-done", help="Stop once every shown graph is done.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """The snapshot, live (Ctrl-C to stop)."""
    show = LazyLive(render)
    try:
        asyncio.run(follow(nats_url, graph, interval, until_done, show))
    except KeyboardInterrupt:
        pass
    finally:
        show.stop()

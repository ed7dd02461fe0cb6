"""`niyantra wait`: a live view until every task of the graph(s) has ended (on `orchestrator.cli.app.app`).

It holds one connection and one watch of the readiness view for the whole wait, so it receives
each change once (it used to read every key again twice a second: on a 10,000-task graph that
was a fifth of a core here and 20,000 values a second from the server, load on the very system
it watched). The live table shows every task of a small graph and, of a large one, the tasks
that are not waiting or done (dispatched, running, ready, failed first) up to a limit, with the
totals line of each graph.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli.app import (
    DEFAULT_URL,
    LazyLive,
    NatsUrl,
    _connect,
    app,
    fail,
)

if TYPE_CHECKING:  # the view's modules are imported when a wait starts (not for `niyantra --help`)
    from rich.console import Group

    from orchestrator.reports.queries import StatusReport
    from projections.readiness.entries import GraphView

LIVE_ROWS = 40  # tasks shown live; `niyantra status` lists them all
REFRESH_S = 0.5  # at most two renders a second, however often the view changes
_ORDER = {"failed": 0, "running": 1, "dispatched": 2, "ready": 3}  # what a watcher wants to see first


def shown(report: StatusReport, limit: int = LIVE_ROWS) -> tuple[StatusReport, int]:
    """Pure: the report as the live view shows it, and how many tasks it leaves out: every task
    when they fit, else the active ones (failed, running, dispatched, ready, in that order, then by
    graph and id) up to ``limit``."""
    from orchestrator.reports.queries import StatusReport

    if len(report.tasks) <= limit:
        return report, 0
    active = sorted(
        (t for t in report.tasks if t["state"] in _ORDER), key=lambda t: (_ORDER[t["state"]], t["graph"], t["id"])
    )
    rows = active[:limit]
    return StatusReport(seq=report.seq, tasks=rows, graphs=report.graphs), len(report.tasks) - len(rows)


def finished(report: StatusReport) -> bool:
    """Pure: every graph shown is done (and there is at least one)."""
    return bool(report.graphs) and all(g["done"] for g in report.graphs)


def graphs_done(graphs: dict[str, GraphView], graph: str | None) -> bool:
    """Pure: what `finished` says of the report, from the graph entries alone (no task is looked
    at): ``graph`` is done, or, without one, every graph is (and there is at least one)."""
    if graph is not None:
        g = graphs.get(graph)
        return g is not None and g.done
    return bool(graphs) and all(g.done for g in graphs.values())


class GraphEntries:
    """The graph entries of a readiness mirror by graph id, kept by its ``on_value`` hook."""

    def __init__(self) -> None:
        self.graphs: dict[str, GraphView] = {}

    def __call__(self, key: str, old: Any, new: Any) -> None:
        if not key.startswith("graph."):
            return
        if new is not None:
            self.graphs[new.graph_id] = new
        elif old is not None:
            self.graphs.pop(old.graph_id, None)


def _render(report: StatusReport) -> Group:
    from rich.console import Group
    from rich.text import Text

    from orchestrator.cli.status import render_status, totals_line

    rows, hidden = shown(report)
    parts: list[Any] = [render_status(rows)]
    if hidden:
        parts.append(Text(f"... and {hidden} more tasks waiting or done (niyantra status lists every one)", "dim"))
    parts.extend(Text(totals_line(g)) for g in report.graphs)
    return Group(*parts)


async def wait_until_done(
    url: str, graph: str | None, timeout: float, show: Callable[[StatusReport], None]
) -> StatusReport:
    """Watch the readiness view until ``finished``; ``show`` each state at most every `REFRESH_S`
    and the last one as soon as the graph(s) are done. Raises TimeoutError after ``timeout`` seconds.

    Whether it is done is checked on every change of the view, from the graph entries alone
    (`graphs_done`), so the wait ends with the change that ends the graph; the whole report (every
    task) is built only for a picture."""
    nc = await _connect(url)
    try:
        return await wait_on(nc, graph, timeout, show)
    finally:
        await nc.close()


async def wait_on(nc: Any, graph: str | None, timeout: float, show: Callable[[StatusReport], None]) -> StatusReport:
    """`wait_until_done` on an open connection."""
    from orchestrator.reports.queries import build_status
    from projections.buckets import ensure_bucket
    from projections.readiness.entries import GraphView, TaskView
    from projections.viewmirror import ViewMirror, graph_keys
    from schemas import subjects as S

    await ensure_bucket(nc, S.KV_READINESS)
    changed = asyncio.Event()
    keys = graph_keys(graph) if graph is not None else ()
    mirror = ViewMirror(nc, S.KV_READINESS, {"task": TaskView, "graph": GraphView}, changed, keys)
    entries = mirror.on_value = GraphEntries()
    await mirror.start()
    try:
        deadline = time.monotonic() + timeout
        shown_at = -REFRESH_S  # when the last picture was shown
        unshown = True  # the view changed since that picture
        while True:
            changed.clear()
            if mirror.consistent and graphs_done(entries.graphs, graph):  # not mid-batch: tasks as current
                report = build_status(mirror.values, mirror.seq, graph)
                show(report)
                return report
            now = time.monotonic()
            if unshown and now - shown_at >= REFRESH_S:
                show(build_status(mirror.values, mirror.seq, graph))
                shown_at, unshown = now, False
            left = deadline - now
            if left <= 0:
                raise TimeoutError
            until = min(left, shown_at + REFRESH_S - now) if unshown else left  # the next picture is due
            try:
                await asyncio.wait_for(changed.wait(), timeout=max(0.0, until))
                unshown = True
            except TimeoutError:
                pass  # a picture is due, or the deadline check above ends the wait
    finally:
        await mirror.stop()


@app.command()
def wait(
    *,
    graph: Annotated[str | None, typer.Option(help="Only this graph.")] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 600.0,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Watch live until every task of the graph(s) is terminal; exit 1 if any did not succeed."""
    show = LazyLive(_render)
    try:
        report = asyncio.run(wait_until_done(nats_url, graph, timeout, show))
    except TimeoutError:
        raise fail(f"not done after {timeout}s", code=1) from None
    finally:
        show.stop()  # its last picture ends with each graph's totals line
    if any(t["state"] != "succeeded" for t in report.tasks):
        raise typer.Exit(1)

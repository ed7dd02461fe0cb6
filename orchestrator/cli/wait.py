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
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from orchestrator.cli.app import (
    DEFAULT_URL,
    LazyLive,
    NatsUrl,
    _connect,
    app,
    fail,
)
from orchestrator.cli.status import render_status, totals_line
from orchestrator.reports.queries import StatusReport, build_status
from projections.readiness.fold import GraphView, TaskView
from projections.runner import ensure_bucket
from projections.viewmirror import ViewMirror
from schemas import subjects as S

LIVE_ROWS = 40  # tasks shown live; `niyantra status` lists them all
REFRESH_S = 0.5  # at most two renders a second, however often the view changes
_ORDER = {"failed": 0, "running": 1, "dispatched": 2, "ready": 3}  # what a watcher wants to see first


def shown(report: StatusReport, limit: int = LIVE_ROWS) -> tuple[StatusReport, int]:
    """Pure: the report as the live view shows it, and how many tasks it leaves out: every task
    when they fit, else the active ones (failed, running, dispatched, ready, in that order, then by
    graph and id) up to ``limit``."""
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


def _render(report: StatusReport) -> Group:
    rows, hidden = shown(report)
    parts: list[Any] = [render_status(rows)]
    if hidden:
        parts.append(Text(f"... and {hidden} more tasks waiting or done (niyantra status lists every one)", "dim"))
    parts.extend(Text(totals_line(g)) for g in report.graphs)
    return Group(*parts)


async def wait_until_done(
    url: str, graph: str | None, timeout: float, show: Callable[[StatusReport], None]
) -> StatusReport:
    """Watch the readiness view until ``finished``; ``show`` each state at most every `REFRESH_S`.
    Raises TimeoutError after ``timeout`` seconds."""
    nc = await _connect(url)
    try:
        await ensure_bucket(nc, S.KV_READINESS)
        changed = asyncio.Event()
        mirror = ViewMirror(nc, S.KV_READINESS, {"task": TaskView, "graph": GraphView}, changed)
        await mirror.start()
        try:
            deadline = time.monotonic() + timeout
            while True:
                changed.clear()
                report = build_status(mirror.values, mirror.seq, graph)
                show(report)
                if finished(report):
                    return report
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                await asyncio.sleep(min(REFRESH_S, left))  # renders at most this often
                if not changed.is_set():
                    try:
                        await asyncio.wait_for(changed.wait(), timeout=max(0.0, deadline - time.monotonic()))
                    except TimeoutError:
                        pass  # the deadline check above ends the wait
        finally:
            await mirror.stop()
    finally:
        await nc.close()


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

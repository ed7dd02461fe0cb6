"""Read-side queries for the CLI: the status of tasks and graphs from the readiness view."""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.runtime.connection import connect as nats_connect
from projections.buckets import ensure_bucket
from projections.readiness.entries import GraphView, TaskView
from projections.viewmirror import ViewMirror
from schemas import subjects as S


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every task and graph the readiness view holds, and the sequence it reflects."""

    seq: int
    tasks: list[dict[str, Any]]
    graphs: list[dict[str, Any]]


def task_row(t: TaskView) -> dict[str, Any]:
    """One task as the status command shows it."""
    return {
        "id": t.task_id,
        "graph": t.graph_id,
        "title": t.title,
        "state": t.state,
        "node": t.node,
        "attempt": t.attempt,
        "depends_on": list(t.depends_on),
        "waiting_for": list(t.waiting_for),
        "exit_code": t.exit_code,
        "duration_s": t.duration_s,
        "reason": t.reason,
        "generated": t.origin,
    }


def graph_row(g: GraphView) -> dict[str, Any]:
    """One graph's totals."""
    return {
        "id": g.graph_id,
        "title": g.title,
        "total": g.total,
        "counts": dict(sorted(g.counts.items())),
        "done": g.done,
    }


def build_status(values: dict[str, Any], seq: int, graph: str | None = None) -> StatusReport:
    """Pure: the status report from the readiness view's values."""
    tasks = sorted((v for v in values.values() if isinstance(v, TaskView)), key=lambda t: (t.graph_id, t.task_id))
    graphs = sorted((v for v in values.values() if isinstance(v, GraphView)), key=lambda g: g.graph_id)
    if graph is not None:
        tasks = [t for t in tasks if t.graph_id == graph]
        graphs = [g for g in graphs if g.graph_id == graph]
    return StatusReport(seq=seq, tasks=[task_row(t) for t in tasks], graphs=[graph_row(g) for g in graphs])


async def read_status(nc: Any, graph: str | None = None) -> StatusReport:
    """Read the readiness view from KV and build the status report."""
    await ensure_bucket(nc, S.KV_READINESS)
    mirror = ViewMirror(nc, S.KV_READINESS, {"task": TaskView, "graph": GraphView})
    await mirror.start()
    await mirror.stop()
    return build_status(mirror.values, mirror.seq, graph)


async def graph_ids(url: str) -> list[str]:
    """Ids of every submitted graph, from the stream's subjects (no event is read)."""

    nc = await nats_connect(url, allow_reconnect=False)
    try:
        return await graph_ids_on(nc)
    finally:
        await nc.close()


async def graph_ids_on(nc: Any) -> list[str]:
    """`graph_ids` on an open connection."""
    info = await nc.jetstream().stream_info(S.STREAM, subjects_filter=f"{S.ROOT}.graph.*.GraphSubmitted")
    return sorted(S.id_of_token(subj, 2) for subj in (info.state.subjects or {}))

"""Run projectors, deciders and agents in-process (each with its own NATS connection)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import nats

from node_agent.agent import run_agent
from node_agent.execution import ExecutionSettings
from node_agent.settings import AgentSettings
from orchestrator.decision.decide import DeciderConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.graphs.submission import graph_events
from orchestrator.processes.decider import run_decider
from orchestrator.reports.queries import read_status
from orchestrator.writeside.eventlog import EventLog
from orchestrator.writeside.service import submit_graph
from orchestrator.writeside.sources import store_source
from projections.runner import run_projector
from schemas.records import TaskSpec


@asynccontextmanager
async def system(
    url: str,
    workdir: Path,
    *,
    agents: int = 3,
    slots: int = 2,
    deciders: int = 1,
    decider_config: DeciderConfig | None = None,
    confidence: bool = False,
) -> AsyncIterator[asyncio.Event]:
    """Start the whole pipeline (``confidence``: with the confidence view's projector too); yields
    the stop event; stops everything on exit."""
    stop = asyncio.Event()
    ready: list[asyncio.Event] = []

    def marker() -> object:
        e = asyncio.Event()
        ready.append(e)
        return e.set

    views = ("readiness", "node-scores", *(("confidence",) if confidence else ()))
    tasks = [asyncio.create_task(run_projector(n, url, stop, marker())) for n in views]
    tasks += [
        asyncio.create_task(
            run_decider(
                url,
                stop,
                dataclasses.replace(decider_config or DeciderConfig(), decider_id=f"decider-{i}"),
                tick=0.5,
                on_ready=marker(),
            )
        )
        for i in range(deciders)
    ]
    tasks += [
        asyncio.create_task(
            run_agent(
                AgentSettings(
                    node_id=f"node-{i}",
                    url=url,
                    slots=slots,
                    execution=ExecutionSettings(workdir=workdir),
                    observe_interval_s=2.0,
                ),
                stop,
                marker(),
            )
        )
        for i in range(1, agents + 1)
    ]
    try:
        await asyncio.wait_for(_all_set(ready, len(tasks)), 30)
        yield stop
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors


async def _all_set(events: list[asyncio.Event], n: int) -> None:
    while len(events) < n or not all(e.is_set() for e in events):
        await asyncio.sleep(0.02)


def layered_graph(graph_id: str, layers: int, width: int, command: str) -> GraphSpec:
    """``layers`` × ``width`` tasks; each depends on two tasks of the layer before."""
    tasks = []
    for layer in range(layers):
        for i in range(width):
            deps = () if layer == 0 else tuple(sorted({f"L{layer - 1}-{i}", f"L{layer - 1}-{(i + 1) % width}"}))
            tasks.append(TaskSpec(id=f"L{layer}-{i}", command=command, depends_on=deps))
    return GraphSpec(id=graph_id, title="layered", tasks=tuple(tasks))


async def submit(url: str, spec: GraphSpec) -> int:
    nc = await nats.connect(url)
    try:
        await store_source(nc, spec)  # the source's blobs first, as `niyantra submit` does
        log = EventLog(nc)
        await log.ensure_stream()
        return await submit_graph(log, graph_events(spec, datetime.now(UTC), f"submit:{spec.id}"))
    finally:
        await nc.close()


async def subject_counts(url: str, filter_subject: str = "ev.task.>") -> Counter[str]:
    """How many messages each event name has, per task: Counter of 'graph/task/EventName'."""
    nc = await nats.connect(url)
    try:
        msgs = await EventLog(nc).read(filter_subject, limit=1_000_000)
    finally:
        await nc.close()
    out: Counter[str] = Counter()
    for m in msgs:
        parts = m.subject.split(".")
        out[f"{parts[2]}/{parts[3]}/{parts[4]}"] += 1
    return out


async def task_status(url: str, graph: str, task: str) -> dict:
    """One task's row of `read_status` (empty when the graph does not have it yet)."""
    nc = await nats.connect(url)
    try:
        report = await read_status(nc, graph)
    finally:
        await nc.close()
    return next((t for t in report.tasks if t["id"] == task), {})

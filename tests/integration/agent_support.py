"""Helpers for agent tests: an in-process agent, dispatches appended by hand, reading a task back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node_agent.agent import run_agent
from node_agent.execution import ExecutionSettings
from node_agent.settings import ACK_WAIT_S, AgentSettings
from orchestrator.writeside.eventlog import EventLog
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import assert_eventually

REPO = Path(__file__).resolve().parents[2]
NIYANTRA = [sys.executable, "-m", "orchestrator.cli.main"]


def now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def agent_running(url: str, workdir: Path, node: str = "n1", **execution: Any) -> AsyncIterator[None]:
    """An in-process agent on ``node`` (its tasks are real subprocesses); stopped on exit."""
    settings = AgentSettings(
        node_id=node,
        url=url,
        slots=execution.pop("slots", 2),
        observe_interval_s=execution.pop("observe_interval_s", 0.5),
        ack_wait_s=execution.pop("ack_wait_s", ACK_WAIT_S),
        execution=replace(ExecutionSettings(workdir=workdir, grace_s=0.5), **execution),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(settings, stop, ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def dispatch_event(graph: str, task: str, node: str, command: str, attempt: int = 1, **kw: Any) -> ev.TaskDispatched:
    return ev.TaskDispatched(
        event_id=f"dispatch:{graph}:{task}:{attempt}:{kw.get('phase', 'run')}",
        occurred_at=now(),
        graph_id=graph,
        task_id=task,
        node_id=node,
        attempt=attempt,
        command=command,
        **kw,
    )


async def dispatch(log: EventLog, graph: str, task: str, node: str, command: str, **kw: Any) -> int:
    """Append a dispatch by hand, guarded by the task's current last sequence."""
    guard = await log.last_seq(S.aggregate_filter(S.task_aggregate(graph, task)))
    return await log.append_event(dispatch_event(graph, task, node, command, **kw), version=1, expected_seq=guard)


async def task_events(log: EventLog, graph: str, task: str) -> list[Any]:
    """The task's events in order."""
    return [e for _, e in await log.read_events(S.aggregate_filter(S.task_aggregate(graph, task)))]


async def wait_event(log: EventLog, graph: str, task: str, kind: type, timeout: float = 20.0, **fields: Any) -> Any:
    """Wait for the task's first event of ``kind`` whose ``fields`` match; return it."""

    async def found() -> Any:
        for e in await task_events(log, graph, task):
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()):
                return e
        return None

    return await assert_eventually(found, timeout=timeout, message=f"{kind.__name__} {fields} for {graph}/{task}")


def niyantra(
    *args: str, url: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a separate process."""
    full_env = {**os.environ, "NIYANTRA_NATS_URL": url, **(env or {})}
    return subprocess.run(
        [*NIYANTRA, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )


def gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie waiting for its reaper counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True

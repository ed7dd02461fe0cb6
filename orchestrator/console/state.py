"""What the console process holds: mirrors of the three views and a copy of the log it follows.

Shell code. The mirrors are the decider's (`ViewMirror` watches of the KV buckets), so pages
show what the decider sees; the log is followed with one ordered consumer from sequence 1, each
event decoded once and indexed by graph and by task, so a task page never reads the stream
again. A malformed message is counted and skipped, as every reader does. ``version`` rises on
every change either side sees; the live pages wait on it (server-sent events), never polling.
Memory grows with the log (decoded events): a console for logs of tens of millions of events
would read a task's events on demand instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from orchestrator.decision.decide import Views
from orchestrator.processes.deciderviews import build_views
from orchestrator.runtime.ordered import subscribe_ordered
from schemas import codec
from schemas import subjects as S
from schemas.errors import MalformedEvent

log = logging.getLogger("niyantra.console")

Row = tuple[int, datetime, Any]


class ConsoleState:
    """The views and the log as the console shows them, kept current by watches."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.mirrors: list[Any] = []
        self.rows: list[Row] = []
        self.by_task: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.by_graph: dict[str, list[tuple[int, Any]]] = {}
        self.malformed = 0
        self.head = 0
        self.version = 0
        self._changed = asyncio.Condition()
        self._sub: Any = None
        self._pollers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load the views and the log so far, then follow both."""
        from orchestrator.writeside.eventlog import EventLog

        await EventLog(self.nc).ensure_stream()
        self.mirrors = await _start_mirrors(self.nc)
        self._sub = await subscribe_ordered(
            self.nc, f"{S.ROOT}.>", stream=S.STREAM, start_seq=1, cb=self._on_msg, unbounded=True
        )
        self._pollers = [asyncio.create_task(self._notify_on(m.changed)) for m in self.mirrors]

    async def stop(self) -> None:
        """Stop following."""
        for p in self._pollers:
            p.cancel()
        if self._sub is not None:
            await self._sub.unsubscribe()
        for m in self.mirrors:
            await m.stop()

    def views(self) -> Views:
        """The decide input, as the decider builds it from the same mirrors."""
        return build_views(self.mirrors[0], self.mirrors[1], self.mirrors[2])

    def view_seqs(self) -> dict[str, int]:
        """The stream sequence each view reflects."""
        return {m.bucket: m.seq for m in self.mirrors}

    def task_events(self, graph: str, task: str) -> list[tuple[int, Any]]:
        """A task's events in order, with the graph's `TasksGenerated` that made it (as `explain` reads)."""
        from orchestrator.reports.explain import generated_by

        generated = [(s, e) for s, e in self.by_graph.get(graph, []) if type(e).__name__ == "TasksGenerated"]
        return sorted(self.by_task.get((graph, task), []) + generated_by(generated, task), key=lambda p: p[0])

    async def log_text(self, graph: str, task: str) -> str | None:
        """The stored output of the task's latest run attempt (redacted, capped), or None."""
        from node_agent.errors import AgentError
        from node_agent.logstore import LogStore

        try:
            stored = await LogStore(self.nc).get(graph, task)
        except AgentError:
            return None
        return stored.data.decode(errors="replace")

    def graph_events(self, graph: str) -> list[tuple[int, Any]]:
        """Every event of a graph and its tasks, in order."""
        return self.by_graph.get(graph, [])

    async def wait_change(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen`` (or after ``timeout``)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version != seen), timeout)
            except TimeoutError:
                pass
            return self.version

    async def wait_view(self, seq: int, timeout: float) -> bool:
        """Whether the readiness view reflects stream sequence ``seq`` within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = -1
        while self.mirrors[0].seq < seq:
            left = deadline - loop.time()
            if left <= 0:
                return False
            seen = await self.wait_change(seen, left)
        return True

    async def _bump(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def _notify_on(self, changed: asyncio.Event) -> None:
        while True:
            await changed.wait()
            changed.clear()
            await self._bump()

    async def _on_msg(self, msg: Any) -> None:
        seq = int(msg.metadata.sequence.stream)
        self.head = max(self.head, seq)
        try:
            e = codec.decode(msg.data, subject=msg.subject, seq=seq)
        except MalformedEvent as err:
            self.malformed += 1
            log.warning("skipped a malformed event: %s", err)
            await self._bump()
            return
        self.rows.append((seq, msg.metadata.timestamp, e))
        graph = getattr(e, "graph_id", None)
        if graph is not None:
            self.by_graph.setdefault(graph, []).append((seq, e))
            task = getattr(e, "task_id", None)
            if task is not None:
                self.by_task.setdefault((graph, task), []).append((seq, e))
        await self._bump()


async def _start_mirrors(nc: Any) -> list[Any]:
    """The readiness (tasks and graphs), node-scores and confidence views, loaded and followed."""
    from projections.buckets import ensure_bucket
    from projections.confidence.entries import ConfidenceSummary
    from projections.node_scores.entries import NodeView, TypeEstimate
    from projections.node_scores.patterns import PatternView
    from projections.readiness.entries import GraphView, TaskView
    from projections.viewmirror import ViewMirror

    mirrors = [
        ViewMirror(nc, S.KV_READINESS, {"task": TaskView, "graph": GraphView}, asyncio.Event()),
        ViewMirror(
            nc, S.KV_NODE_SCORES, {"node": NodeView, "type": TypeEstimate, "pattern": PatternView}, asyncio.Event()
        ),
        ViewMirror(nc, S.KV_CONFIDENCE, {"summary": ConfidenceSummary}, asyncio.Event()),
    ]
    for m in mirrors:
        await ensure_bucket(nc, m.bucket)
        await m.start()
    return mirrors

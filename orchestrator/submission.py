"""Submitting a graph: the events that accept it (pure), and how readers take it whole again.

A graph is accepted by one atomic write. Small graphs are one `GraphSubmitted`; a graph whose
tasks do not fit one message is split into `GraphSubmitted` (``parts`` = N, the first tasks)
and `GraphTasksAdded` parts 1 … N-1, all committed in one JetStream atomic batch, so readers
see all of it or none. `GraphAssembly` joins the parts back for any fold.

Idempotence: ``digest`` is a hash of the graph's content (id, title, tasks). Submitting the
same content again is a no-op; different content under an existing id is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from orchestrator.graphcheck import GraphSpec
from schemas.events import GraphSubmitted, GraphTasksAdded, TaskSpec
from schemas.subjects import check_id

# Bytes of encoded tasks per message: far below the 1 MB default max_payload of nats-server.
PART_BYTES = 512 * 1024
_enc = msgspec.json.Encoder()


def graph_digest(spec: GraphSpec) -> str:
    """Hash of the graph's content; equal for the same file submitted twice."""
    h = hashlib.sha256()
    h.update(_enc.encode([spec.id, spec.title]))
    for t in spec.tasks:
        h.update(_enc.encode(t))
    if spec.rules:  # graphs without rules keep their digest
        h.update(_enc.encode([spec.rules, spec.generation_limit]))
    if spec.backlog_priority is not None:
        h.update(_enc.encode(["backlog", spec.backlog_priority]))
    return h.hexdigest()


def _split(tasks: tuple[TaskSpec, ...], part_bytes: int) -> list[tuple[TaskSpec, ...]]:
    parts: list[tuple[TaskSpec, ...]] = []
    start, size = 0, 0
    for i, t in enumerate(tasks):
        n = len(_enc.encode(t)) + 1
        if size + n > part_bytes and i > start:
            parts.append(tasks[start:i])
            start, size = i, 0
        size += n
    parts.append(tasks[start:])
    return parts


def graph_events(
    spec: GraphSpec,
    now: datetime,
    event_id: str,
    submitted_by: str = "",
    part_bytes: int = PART_BYTES,
) -> list[GraphSubmitted | GraphTasksAdded]:
    """Pure: the events that accept a validated graph, first `GraphSubmitted` then its parts."""
    check_id("graph id", spec.id)
    parts = _split(spec.tasks, part_bytes)
    head = GraphSubmitted(
        event_id=event_id,
        occurred_at=now,
        correlation_id=spec.id,
        graph_id=spec.id,
        title=spec.title,
        tasks=parts[0],
        source=spec.source,
        submitted_by=submitted_by,
        digest=graph_digest(spec),
        parts=len(parts),
        rules=spec.rules,
        generation_limit=spec.generation_limit,
        backlog_priority=spec.backlog_priority,
    )
    rest = [
        GraphTasksAdded(
            event_id=f"{event_id}/part-{i}",
            occurred_at=now,
            causation_id=event_id,
            correlation_id=spec.id,
            graph_id=spec.id,
            part=i,
            tasks=tasks,
        )
        for i, tasks in enumerate(parts[1:], start=1)
    ]
    return [head, *rest]


@dataclass
class GraphAssembly:
    """Joins a graph's parts: feed it each graph event, get the whole `GraphSubmitted` once complete.

    Used inside pure folds; it holds only graphs whose parts are still arriving (in practice
    none between batches, since the parts are committed together).
    """

    pending: dict[str, tuple[GraphSubmitted, list[TaskSpec]]] = field(default_factory=dict)

    def add(self, event: GraphSubmitted | GraphTasksAdded) -> GraphSubmitted | None:
        """The complete graph when ``event`` completes one, else None."""
        if isinstance(event, GraphSubmitted):
            if event.parts <= 1:
                return event
            self.pending[event.graph_id] = (event, list(event.tasks))
            return None
        entry = self.pending.get(event.graph_id)
        if entry is None:
            return None  # a part without its head: ignored by the caller's bookkeeping
        head, tasks = entry
        tasks.extend(event.tasks)
        if event.part < head.parts - 1:
            return None
        del self.pending[event.graph_id]
        return msgspec.structs.replace(head, tasks=tuple(tasks), parts=1)

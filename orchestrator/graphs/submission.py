"""Submitting a graph: the events that accept it (pure), and how readers take it whole again.

A graph is accepted by one atomic write. Small graphs are one `GraphSubmitted`; a graph whose
tasks do not fit one message is split into `GraphSubmitted` (``parts`` = N, the first tasks)
and `GraphTasksAdded` parts 1 … N-1, all committed in one JetStream atomic batch, so readers
see all of it or none. `GraphAssembly` joins the parts back for any fold.

A graph with a source tree carries its manifest's files the same way: after the tasks, in the
same parts (`GraphSubmitted.source_files`, then each part's), so the log alone says which
file contents every task's workspace holds.

Idempotence: ``digest`` is a hash of the graph's content (id, title, tasks, rules, the source
tree's digest, the filesets). Submitting the same content again is a no-op; different content
under an existing id is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from orchestrator.graphs.validation import GraphSpec
from schemas.events import GraphSubmitted, GraphTasksAdded
from schemas.ids import check_user_id
from schemas.records import ArtifactRecord, TaskSpec

# Bytes of encoded tasks per message: far below the 1 MB default max_payload of nats-server.
PART_BYTES = 512 * 1024
_enc = msgspec.json.Encoder()
# A task without inputs and outputs hashes as it did before those fields existed (they are the
# last two), so a graph submitted then is still "the same content" when submitted again.
_NO_IO = b',"inputs":[],"outputs":[]}'


def _task_bytes(t: TaskSpec) -> bytes:
    b = _enc.encode(t)
    return b[: -len(_NO_IO)] + b"}" if b.endswith(_NO_IO) else b


def graph_digest(spec: GraphSpec) -> str:
    """Hash of the graph's content; equal for the same file submitted twice."""
    h = hashlib.sha256()
    h.update(_enc.encode([spec.id, spec.title]))
    for t in spec.tasks:
        h.update(_task_bytes(t))
    if spec.rules:  # graphs without rules keep their digest
        h.update(_enc.encode([spec.rules, spec.generation_limit]))
    if spec.backlog_priority is not None:
        h.update(_enc.encode(["backlog", spec.backlog_priority]))
    if spec.source_tree:  # likewise graphs without a source or filesets
        h.update(_enc.encode(["source", spec.source_tree]))
    if spec.filesets:
        h.update(_enc.encode(["filesets", sorted(spec.filesets.items())]))
    if not spec.cache or spec.uncached or spec.cache_domain or spec.cache_trusts:  # likewise the cache's defaults
        h.update(_enc.encode(["cache", spec.cache, spec.uncached, spec.cache_domain, spec.cache_trusts]))
    return h.hexdigest()


Part = tuple[tuple[TaskSpec, ...], tuple[ArtifactRecord, ...]]


def _split(tasks: tuple[TaskSpec, ...], files: tuple[ArtifactRecord, ...], part_bytes: int) -> list[Part]:
    """Tasks, then files, in parts of at most ``part_bytes`` encoded bytes (each part holds one item at least)."""
    parts: list[Part] = []
    items: list[TaskSpec | ArtifactRecord] = [*tasks, *files]
    start, size = 0, 0
    for i, item in enumerate(items):
        n = len(_enc.encode(item)) + 1
        if size + n > part_bytes and i > start:
            parts.append(_part(items, start, i, len(tasks)))
            start, size = i, 0
        size += n
    parts.append(_part(items, start, len(items), len(tasks)))
    return parts


def _part(items: list[TaskSpec | ArtifactRecord], start: int, end: int, n_tasks: int) -> Part:
    cut = min(max(n_tasks, start), end)
    tasks = tuple(t for t in items[start:cut] if isinstance(t, TaskSpec))
    files = tuple(f for f in items[cut:end] if isinstance(f, ArtifactRecord))
    return tasks, files


def graph_events(
    spec: GraphSpec,
    now: datetime,
    event_id: str,
    submitted_by: str = "",
    part_bytes: int = PART_BYTES,
) -> list[GraphSubmitted | GraphTasksAdded]:
    """Pure: the events that accept a validated graph, first `GraphSubmitted` then its parts."""
    check_user_id("graph id", spec.id)
    parts = _split(spec.tasks, spec.source_files, part_bytes)
    head = GraphSubmitted(
        event_id=event_id,
        occurred_at=now,
        correlation_id=spec.id,
        graph_id=spec.id,
        title=spec.title,
        tasks=parts[0][0],
        source=spec.source,
        submitted_by=submitted_by,
        digest=graph_digest(spec),
        parts=len(parts),
        rules=spec.rules,
        generation_limit=spec.generation_limit,
        backlog_priority=spec.backlog_priority,
        source_tree=spec.source_tree,
        source_files=parts[0][1],
        filesets=spec.filesets,
        cache=spec.cache,
        uncached=spec.uncached,
        cache_domain=spec.cache_domain,
        cache_trusts=spec.cache_trusts,
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
            source_files=files,
        )
        for i, (tasks, files) in enumerate(parts[1:], start=1)
    ]
    return [head, *rest]


@dataclass
class GraphAssembly:
    """Joins a graph's parts: feed it each graph event, get the whole `GraphSubmitted` once complete.

    Used inside pure folds; it holds only graphs whose parts are still arriving (in practice
    none between batches, since the parts are committed together).
    """

    pending: dict[str, tuple[GraphSubmitted, list[TaskSpec], list[ArtifactRecord]]] = field(default_factory=dict)

    def add(self, event: GraphSubmitted | GraphTasksAdded) -> GraphSubmitted | None:
        """The complete graph when ``event`` completes one, else None."""
        if isinstance(event, GraphSubmitted):
            if event.parts <= 1:
                return event
            self.pending[event.graph_id] = (event, list(event.tasks), list(event.source_files))
            return None
        entry = self.pending.get(event.graph_id)
        if entry is None:
            return None  # a part without its head: ignored by the caller's bookkeeping
        head, tasks, files = entry
        tasks.extend(event.tasks)
        files.extend(event.source_files)
        if event.part < head.parts - 1:
            return None
        del self.pending[event.graph_id]
        return msgspec.structs.replace(head, tasks=tuple(tasks), source_files=tuple(files), parts=1)

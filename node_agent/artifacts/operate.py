"""Operating the store (``niyantra artifacts list|get|gc``): the shell around the pure inventory and gc rule.

References come from the log: every successful ``TaskCompleted`` with its recorded outputs. The
blobs that tasks not yet ended still need come from the readiness view (a task's state and its
dependencies) and those references. Each function here reads, calls one pure function, and acts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from node_agent.artifacts.digest import REGULAR, file_mode, is_digest
from node_agent.artifacts.errors import BlobNotFound
from node_agent.artifacts.inventory import (
    InventoryRow,
    Reference,
    inventory,
    latest_outputs,
    pick_output,
    references_from_events,
)
from node_agent.artifacts.retention import GcPlan, needed_digests, plan_gc
from node_agent.artifacts.store import ArtifactStore
from schemas import events as ev
from schemas import records as rec
from schemas import subjects as S

COMPLETIONS = S.result_filter("TaskCompleted", "*")
DEFAULT_KEEP_DAYS = 30.0
DEFAULT_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class GcReport:
    """What a gc did (or, dry, would do): the plan, and the orphan chunks purged."""

    plan: GcPlan
    removed: tuple[str, ...]
    orphans_purged: tuple[str, ...]
    dry_run: bool


async def read_completions(nc: Any, filter_subject: str = COMPLETIONS) -> list[ev.TaskCompleted]:
    """Every completion on ``filter_subject`` in log order (malformed events are skipped by the reader)."""
    from orchestrator.writeside.eventlog import EventLog

    log = EventLog(nc)
    await log.ensure_stream()
    return [e for _, e in await log.read_events(filter_subject) if isinstance(e, ev.TaskCompleted)]


async def read_sources(nc: Any) -> list[ev.GraphSubmitted | ev.GraphTasksAdded]:
    """Every graph submission and part (their source files are references too), in log order."""
    from orchestrator.writeside.eventlog import EventLog

    log = EventLog(nc)
    await log.ensure_stream()
    out: list[ev.GraphSubmitted | ev.GraphTasksAdded] = []
    for name in ("GraphSubmitted", "GraphTasksAdded"):
        events = await log.read_events(S.graph_event_filter(name))
        out += [e for _, e in events if isinstance(e, ev.GraphSubmitted | ev.GraphTasksAdded)]
    return out


async def read_references(nc: Any) -> list[Reference]:
    """Every recorded output of every successful completion, and every graph's source files."""
    return references_from_events([*await read_sources(nc), *await read_completions(nc)])


async def list_artifacts(nc: Any) -> list[InventoryRow]:
    """Every blob with who refers to it, plus referenced blobs that are missing."""
    store = ArtifactStore(nc)
    await store.ensure_bucket()
    return inventory(await store.blobs(), await read_references(nc))


def resolve_digest(prefix: str, digests: list[str]) -> str:
    """The one digest starting with ``prefix`` (at least 8 hex digits), or `BlobNotFound` saying why."""
    if is_digest(prefix):
        return prefix
    matches = [d for d in digests if d.startswith(prefix.lower())] if len(prefix) >= 8 else []
    if len(matches) != 1:
        raise BlobNotFound(prefix if not matches else f"{prefix} (ambiguous: {len(matches)} blobs start with it)")
    return matches[0]


async def get_blob(nc: Any, digest: str, dest: Path) -> int:
    """Fetch a blob (by digest or a unique prefix of at least 8 hex digits) into ``dest``."""
    store = ArtifactStore(nc)
    if not is_digest(digest):
        digest = resolve_digest(digest, [b.digest for b in await store.blobs()])
    size = await store.fetch(digest, dest)
    os.chmod(dest, REGULAR)
    return size


async def get_output(nc: Any, graph_id: str, task_id: str, path: str, dest: Path) -> rec.ArtifactRecord:
    """Fetch output ``path`` of a task's last successful attempt (or of the success a cache hit
    reused for it) into ``dest``, with its recorded mode."""
    completions = await read_completions(nc, _task_completions(graph_id, task_id))
    if latest_outputs(completions) is None:  # a cache hit completed it: the outputs it reused
        completions += [_as_completion(h) for h in await _read_hits(nc, graph_id, task_id)]
    record = pick_output(completions, graph_id, task_id, path)
    await ArtifactStore(nc).fetch(record.digest, dest)
    os.chmod(dest, file_mode(record.mode))
    return record


async def _read_hits(nc: Any, graph_id: str, task_id: str) -> list[ev.TaskCacheHit]:
    from orchestrator.writeside.eventlog import EventLog

    events = await EventLog(nc).read_events(S.subject(S.task_aggregate(graph_id, task_id), "TaskCacheHit"))
    return [e for _, e in events if isinstance(e, ev.TaskCacheHit)]


def _as_completion(hit: ev.TaskCacheHit) -> ev.TaskCompleted:
    """A cache hit read as the successful completion whose outputs it reused."""
    return ev.TaskCompleted(
        event_id=hit.event_id, occurred_at=hit.occurred_at, graph_id=hit.graph_id, task_id=hit.task_id,
        node_id="", attempt=hit.reused_attempt, outcome="success", outputs=hit.outputs,
    )  # fmt: skip


def _task_completions(graph_id: str, task_id: str) -> str:
    return S.subject(S.task_aggregate(graph_id, task_id), "TaskCompleted", "*")


async def live_needs(nc: Any, completions: list[ev.TaskCompleted]) -> set[str]:
    """Digests that tasks not yet ended (per the readiness view) will lay out from their dependencies."""
    from orchestrator.reports.queries import read_status

    report = await read_status(nc)
    outputs: dict[tuple[str, str], tuple[rec.ArtifactRecord, ...]] = {}
    by_task: dict[tuple[str, str], list[ev.TaskCompleted]] = {}
    for c in completions:
        by_task.setdefault((c.graph_id, c.task_id), []).append(c)
    for key, cs in by_task.items():
        done = latest_outputs(cs)
        if done is not None:
            outputs[key] = done.outputs
    tasks = [(t["graph"], t["id"], t["state"], t["depends_on"]) for t in report.tasks]
    return needed_digests(tasks, outputs)


async def collect_garbage(
    nc: Any,
    *,
    now: datetime,
    keep_for: timedelta,
    min_age: timedelta = DEFAULT_GRACE,
    extra_needed: frozenset[str] = frozenset(),
    dry_run: bool = False,
) -> GcReport:
    """Remove the blobs `plan_gc` gives up (no reference within ``keep_for``, none needed, older than
    ``min_age``), then the chunks of killed uploads and removed blobs older than ``min_age``."""
    store = ArtifactStore(nc)
    await store.ensure_bucket()
    completions = await read_completions(nc)
    needed = await live_needs(nc, completions) | extra_needed
    plan = plan_gc(
        await store.blobs(),
        references_from_events([*await read_sources(nc), *completions]),
        needed,
        now=now,
        keep_for=keep_for,
        min_age=min_age,
    )
    if dry_run:
        return GcReport(plan, (), (), dry_run=True)
    removed = tuple([d for d in plan.remove if await store.delete(d)])
    purged = tuple(await store.purge_orphans(now, min_age))
    return GcReport(plan, removed, purged, dry_run=False)

"""Which blobs garbage collection removes: a pure rule over blobs, references and needs.

A blob is kept when any of these holds, and removed otherwise:

1. a task that has not ended yet (pending, ready, dispatched, running) needs it: an output of one
   of its dependencies (or a file of its graph's source) — ``needed``, computed by the caller;
2. a reference recorded within ``keep_for`` (the last N days) names it;
3. it was stored less than ``min_age`` ago: an agent stores a task's outputs *before* the
   completion that refers to them is recorded, so a fresh blob may be about to be referenced;
4. its upload time is unknown (never guess an age).

A corrupt blob (its metadata names other content) is removed by the same rule; it is never used.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from node_agent.artifacts.blobinfo import BlobInfo
from node_agent.artifacts.inventory import Reference
from schemas import records as rec

LIVE_STATES = frozenset({"pending", "ready", "dispatched", "running"})


@dataclass(frozen=True)
class GcPlan:
    """The digests to remove, and every kept one with the reason."""

    remove: tuple[str, ...]
    keep: tuple[tuple[str, str], ...]
    bytes_freed: int = 0


def plan_gc(
    blobs: Iterable[BlobInfo],
    refs: Iterable[Reference],
    needed: Collection[str],
    *,
    now: datetime,
    keep_for: timedelta,
    min_age: timedelta,
) -> GcPlan:
    """Pure: which blobs to remove (see the module docstring for the rule)."""
    cutoff = now - keep_for
    recent: dict[str, Reference] = {}
    for r in refs:
        if r.at >= cutoff and (r.digest not in recent or r.at > recent[r.digest].at):
            recent[r.digest] = r
    remove: list[str] = []
    keep: list[tuple[str, str]] = []
    freed = 0
    for b in sorted(blobs, key=lambda b: b.digest):
        reason = _keep_reason(b, recent.get(b.digest), needed, now, min_age)
        if reason:
            keep.append((b.digest, reason))
        else:
            remove.append(b.digest)
            freed += b.size
    return GcPlan(tuple(remove), tuple(keep), freed)


def _keep_reason(b: BlobInfo, ref: Reference | None, needed: Collection[str], now: datetime, min_age: timedelta) -> str:
    if b.digest in needed:
        return "needed by a task that has not ended"
    if ref is not None:
        who = f"{ref.graph_id}/{ref.task_id}" if ref.task_id else f"graph {ref.graph_id}'s source"
        return f"referenced by {who} ({ref.path}) at {ref.at.isoformat()}"
    if b.mtime is None:
        return "its upload time is unknown"
    if now - b.mtime < min_age:
        return f"stored at {b.mtime.isoformat()}, within the {min_age} grace"
    return ""


def needed_digests(
    tasks: Iterable[tuple[str, str, str, Iterable[str]]],
    outputs: Mapping[tuple[str, str], Iterable[rec.ArtifactRecord]],
) -> set[str]:
    """Pure: the digests that tasks not yet ended will lay out: their dependencies' recorded outputs.

    ``tasks`` are (graph, task, state, depends_on); ``outputs`` maps (graph, task) to the records of
    its last successful completion.
    """
    needed: set[str] = set()
    for graph_id, _task_id, state, depends_on in tasks:
        if state in LIVE_STATES:
            for dep in depends_on:
                needed.update(r.digest for r in outputs.get((graph_id, dep), ()))
    return needed

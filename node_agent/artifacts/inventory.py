"""Who refers to which blob: references from the event log, the store's inventory, a task's outputs.

Pure functions over events and blob metadata; `node_agent.artifacts.operate` reads them from NATS.
A reference is one recorded output of one task's successful completion, or one file of a graph's
source tree (``task_id`` empty; its manifest too, at path `MANIFEST_PATH`): the blobs every
task's workspace of that graph is laid out from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from node_agent.artifacts.blobinfo import BlobInfo
from node_agent.artifacts.errors import NoSuchOutput
from node_agent.artifacts.paths import clean_relpath
from schemas import events as ev
from schemas import records as rec


@dataclass(frozen=True, order=True)
class Reference:
    """One recorded use of a blob: by a task's output (or a graph's source file) at a path."""

    digest: str
    graph_id: str
    task_id: str
    path: str
    at: datetime  # when the fact that refers to it was recorded


@dataclass(frozen=True)
class InventoryRow:
    """One blob and who refers to it; ``size`` is None when it is referred to but not stored."""

    digest: str
    size: int | None
    stored_at: datetime | None
    refs: tuple[Reference, ...]
    intact: bool = True


MANIFEST_PATH = "(source manifest)"


def references_from_events(events: Iterable[object]) -> list[Reference]:
    """Every output recorded by a successful completion and every source file (and manifest) of a
    submitted graph, in event order."""
    refs: list[Reference] = []
    for e in events:
        if isinstance(e, ev.TaskCompleted) and e.outcome == "success":
            refs += [Reference(o.digest, e.graph_id, e.task_id, o.path, e.occurred_at) for o in e.outputs]
        elif isinstance(e, ev.GraphSubmitted | ev.GraphTasksAdded):
            if isinstance(e, ev.GraphSubmitted) and e.source_tree:
                refs.append(Reference(e.source_tree, e.graph_id, "", MANIFEST_PATH, e.occurred_at))
            refs += [Reference(f.digest, e.graph_id, "", f.path, e.occurred_at) for f in e.source_files]
    return refs


def inventory(blobs: Iterable[BlobInfo], refs: Iterable[Reference]) -> list[InventoryRow]:
    """Every stored blob with its references, plus every referenced blob that is missing; by digest."""
    by_digest: dict[str, list[Reference]] = {}
    for r in refs:
        by_digest.setdefault(r.digest, []).append(r)
    stored = {b.digest: b for b in blobs}
    rows = []
    for digest in sorted(stored.keys() | by_digest.keys()):
        b = stored.get(digest)
        mine = tuple(sorted(by_digest.get(digest, ())))
        if b is None:
            rows.append(InventoryRow(digest, None, None, mine, intact=False))
        else:
            rows.append(InventoryRow(digest, b.size, b.mtime, mine, b.intact))
    return rows


def latest_outputs(completions: Sequence[ev.TaskCompleted]) -> ev.TaskCompleted | None:
    """The last successful run completion among a task's completions (None if it never succeeded)."""
    done = [c for c in completions if c.outcome == "success" and c.phase == "run"]
    return max(done, key=lambda c: c.attempt) if done else None


def pick_output(completions: Sequence[ev.TaskCompleted], graph_id: str, task_id: str, path: str) -> rec.ArtifactRecord:
    """The record of output ``path`` of the task's last successful attempt, or `NoSuchOutput` saying why."""
    done = latest_outputs(completions)
    if done is None:
        raise NoSuchOutput(graph_id, task_id, path, "it has no successful completion")
    want = clean_relpath(path)
    for record in done.outputs:
        if record.path == want:
            return record
    paths = ", ".join(r.path for r in done.outputs[:10]) or "none"
    more = f" and {len(done.outputs) - 10} more" if len(done.outputs) > 10 else ""
    raise NoSuchOutput(graph_id, task_id, path, f"attempt {done.attempt} recorded {paths}{more}")

"""Output collection: after a task succeeds, find its declared outputs and store each one.

A declared output is a path or a glob relative to the workspace:

- a plain path must be there (`OutputMissing` names it); a folder stands for every file below it;
- a glob (``*``, ``?``, ``[...]``; ``**`` for any depth, as Python's pathlib: ``*`` matches
  dotfiles too, ``**`` does not descend through symlinked folders) may match nothing: a glob says
  "whatever matches", like Nx's and Turborepo's outputs, so an empty match is not an error; it
  is reported (`Collected.empty_globs`) for the agent to log;
- every match must resolve inside the workspace: a symlink leading out is refused (`UnsafePath`),
  one inside is stored as the content it points to; a dangling link, a fifo or a device is
  refused (`NotAFile`). The agent's own folder (``.niyantra``, shared mode) is never collected.

Each file is hashed, stored (once per content: `ArtifactStore.put_file`) and recorded as an
`ArtifactRecord` (path, digest, size, mode) for the completion event, sorted by path.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.digest import file_mode, hash_file
from node_agent.artifacts.errors import NotAFile, OutputMissing
from node_agent.artifacts.paths import clean_relpath, resolve_inside
from node_agent.artifacts.store import ArtifactStore
from node_agent.workspace import META_DIR
from schemas.records import ArtifactRecord

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Found:
    """One output file: its clean path in the workspace and its recorded mode."""

    path: str
    mode: int


@dataclass(frozen=True)
class Collected:
    """A task's stored outputs, the globs that matched nothing, and how many blobs were new."""

    records: tuple[ArtifactRecord, ...]
    empty_globs: tuple[str, ...] = ()
    uploaded: int = 0


def is_glob(pattern: str) -> bool:
    """Tell whether a declared output is a glob rather than a plain path."""
    return not GLOB_CHARS.isdisjoint(pattern)


def find_outputs(workspace: Path, declared: Sequence[str]) -> tuple[list[Found], list[str]]:
    """The files the declared outputs name, sorted and without repeats, and the globs that matched nothing."""
    found: dict[str, Found] = {}
    empty: list[str] = []
    for decl in declared:
        rel = clean_relpath(decl)
        if is_glob(rel):
            matches = sorted(p.relative_to(workspace).as_posix() for p in workspace.glob(rel))
            matches = [m for m in matches if not _is_meta(m)]
            if not matches:
                empty.append(decl)
            for m in matches:
                _add(workspace, m, found)
        elif (workspace / rel).is_symlink() or (workspace / rel).exists():
            _add(workspace, rel, found)
        else:
            raise OutputMissing(decl)
    return [found[p] for p in sorted(found)], empty


def _is_meta(rel: str) -> bool:
    return rel == META_DIR or rel.startswith(META_DIR + "/")


def _add(workspace: Path, rel: str, found: dict[str, Found]) -> None:
    path = workspace / rel
    if path.is_symlink() and not path.exists():
        raise NotAFile(rel, "a dangling symlink")
    resolve_inside(workspace, rel)
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        for sub in _files_below(path):
            _add(workspace, sub.relative_to(workspace).as_posix(), found)
    elif stat.S_ISREG(st.st_mode):
        found[rel] = Found(rel, file_mode(st.st_mode))
    else:
        raise NotAFile(rel, "a fifo, socket or device")


def _files_below(folder: Path) -> list[Path]:
    """Every non-folder entry below ``folder`` (symlinked folders are entries, not descended)."""
    out: list[Path] = []
    for top, dirs, files in os.walk(folder):
        base = Path(top)
        out += [base / f for f in files]
        out += [base / d for d in dirs if (base / d).is_symlink()]
    return sorted(out)


async def collect_outputs(
    workspace: Path, declared: Sequence[str], store: ArtifactStore, *, cache: LocalCache | None = None
) -> Collected:
    """Find the declared outputs, store each in the artifact store, and return their records.

    With ``cache``, each stored file is copied into the agent's local cache too, so a dependent
    task on this node lays it out without fetching it.
    """
    found, empty = find_outputs(workspace, declared)
    records: list[ArtifactRecord] = []
    uploaded = 0
    limit = store.settings.max_blob_bytes
    for f in found:
        file = workspace / f.path
        digest, size = await asyncio.to_thread(hash_file, str(file), limit, f.path)
        stored = await store.put_file(file, digest=digest, label=f.path)
        uploaded += stored.uploaded
        if cache is not None:
            await asyncio.to_thread(cache.add_file, file, digest)
        records.append(ArtifactRecord(path=f.path, digest=digest, size=size, mode=f.mode))
    return Collected(tuple(records), tuple(empty), uploaded)

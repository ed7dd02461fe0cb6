"""Workspace layout: put a manifest's files (a source tree, dependencies' outputs) at their paths.

Every path is checked before anything is fetched or written: a path that is absolute, climbs out
with ``..`` or whose folder leads out of the workspace through a symlink is refused with
`UnsafePath` naming it; two entries that give one path different contents, or a file that
would be a folder of another entry, are refused with `LayoutFailed`. Each file then comes from the
local cache (fetched there once), by hardlink by default or by copy:

- ``hardlink``: the workspace file *is* the cache's read-only blob (0o444, or 0o555 when the entry
  is executable), so laying out costs no copy and a task cannot change the cache by writing
  through it (a task run as root could; use ``copy`` there). Falls back to a copy across
  filesystems.
- ``copy``: a private, writable copy with the entry's mode (0o644 or 0o755).

A file already at a path is replaced by a rename, never written through (a symlink there is
replaced, not followed); a folder at a file's path is an error.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from node_agent.artifacts.cache import BlobSource, LocalCache
from node_agent.artifacts.digest import EXECUTABLE, REGULAR, file_mode, is_digest
from node_agent.artifacts.errors import LayoutFailed
from node_agent.artifacts.paths import clean_relpath, parent_inside

LinkMode = Literal["hardlink", "copy"]
LINK_MODES: tuple[str, ...] = ("hardlink", "copy")
FETCH_CONCURRENCY = 4
_counter = itertools.count()


class Entry(Protocol):
    """One file of a manifest (`schemas.records.ArtifactRecord` is one)."""

    @property
    def path(self) -> str: ...

    @property
    def digest(self) -> str: ...

    @property
    def mode(self) -> int: ...


@dataclass(frozen=True)
class Placement:
    """One checked file of a layout: its clean path, digest and executable bit."""

    path: str
    digest: str
    executable: bool


@dataclass(frozen=True)
class LayoutResult:
    """What a layout did: files linked, copied, and already in place."""

    linked: int = 0
    copied: int = 0
    unchanged: int = 0


def plan_layout(entries: Iterable[Entry]) -> list[Placement]:
    """Pure: the entries' clean paths, checked for safety and for clashes, sorted by path."""
    by_path: dict[str, Placement] = {}
    for e in entries:
        rel = clean_relpath(e.path)
        if not is_digest(e.digest):
            raise LayoutFailed(e.path, f"its digest {e.digest!r} is not a sha256 hex digest")
        place = Placement(rel, e.digest, file_mode(e.mode) == EXECUTABLE)
        if by_path.setdefault(rel, place) != place:
            raise LayoutFailed(rel, "two entries give it different contents or modes")
    paths = sorted(by_path)
    for a, b in itertools.pairwise(paths):
        if b.startswith(a + "/"):
            raise LayoutFailed(a, f"it is a file, and {b!r} needs it to be a folder")
    return [by_path[p] for p in paths]


def check_layout(plan: Sequence[Placement], workspace: Path) -> None:
    """Refuse (`UnsafePath`) any placement whose folder leads out of the workspace on disk."""
    for place in plan:
        parent_inside(workspace, place.path)


async def materialize(
    entries: Iterable[Entry],
    workspace: Path,
    cache: LocalCache,
    source: BlobSource,
    *,
    mode: LinkMode = "hardlink",
) -> LayoutResult:
    """Check every path, fetch the blobs the cache lacks (each once), then lay the files out."""
    plan = plan_layout(entries)
    check_layout(plan, workspace)
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def need(digest: str) -> None:
        async with gate:
            await cache.ensure(digest, source)

    async with asyncio.TaskGroup() as group:
        for digest in sorted({p.digest for p in plan}):
            group.create_task(need(digest))
    return lay_out(plan, workspace, cache, mode=mode)


def lay_out(
    plan: Sequence[Placement], workspace: Path, cache: LocalCache, *, mode: LinkMode = "hardlink"
) -> LayoutResult:
    """Put each planned file at its path from the cache (every blob must be held already)."""
    check_layout(plan, workspace)
    linked = copied = unchanged = 0
    for place in plan:
        how = _place(place, workspace, cache, mode)
        linked += how == "linked"
        copied += how == "copied"
        unchanged += how == "unchanged"
    return LayoutResult(linked, copied, unchanged)


def _place(place: Placement, workspace: Path, cache: LocalCache, mode: LinkMode) -> str:
    dest = workspace / place.path
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise LayoutFailed(place.path, "a file in the workspace is where one of its folders must be") from e
    if dest.is_dir() and not dest.is_symlink():
        raise LayoutFailed(place.path, "a folder is already there")
    if not cache.has(place.digest):
        raise LayoutFailed(place.path, f"blob sha256:{place.digest} is not in the local cache")
    if mode == "hardlink":
        src = cache.executable(place.digest) if place.executable else cache.path(place.digest)
        if _same_file(src, dest):
            return "unchanged"
        if _link(src, dest, place.path):
            return "linked"
    _copy(cache.path(place.digest), dest, EXECUTABLE if place.executable else REGULAR, place.path)
    return "copied"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return not b.is_symlink() and os.path.samefile(a, b)
    except OSError:  # b is not there (yet)
        return False


def _tmp_beside(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}.{next(_counter)}.niyantra")


def _link(src: Path, dest: Path, rel: str) -> bool:
    tmp = _tmp_beside(dest)
    try:
        os.link(src, tmp)
    except OSError:  # another filesystem, too many links, no hardlinks here: the caller copies
        return False
    try:
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise LayoutFailed(rel, f"cannot rename into place: {e}") from e
    return True


def _copy(src: Path, dest: Path, mode: int, rel: str) -> None:
    tmp = _tmp_beside(dest)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except OSError as e:
        raise LayoutFailed(rel, f"cannot copy into place: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)

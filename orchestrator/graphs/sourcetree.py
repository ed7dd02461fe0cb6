"""A graph's source tree: the folders it names (`SourceMount`) walked into a `SourceManifest`.

A mount is a directory on the submitting machine, the folder of the workspace it is laid out at
(``at``, "" for the workspace root) and globs of paths to leave out (``exclude``, relative to the
directory; a glob that matches a folder leaves out everything below it). The manifest lists every
regular file once, at its workspace path (POSIX, relative, no ``.``/``..``), with the SHA-256 and
size of its content and its mode (0o755 if any execute bit is set, else 0o644: a umask never
shows), sorted by path, so the same tree always gives the same manifest and digest wherever and
whenever it is walked. Folders are implied; an empty folder is not recorded.

Symlinks: one that leads to a regular file inside the same mount is recorded as that file's
content at the link's path (a build sees the same bytes); one that leads out of the mount, to a
folder, or nowhere is refused with `SourceTreeError` naming it, as are fifos, sockets and devices:
exclude such a path to submit the rest. Two mounts that give one workspace path are refused too.

`source_paths` lists the workspace paths without reading any file (for ``validate``);
`manifest_of` and `manifest_of_mounts` also hash every file (for ``submit``). Storing the blobs
is the artifact store's part: this module only says what the tree holds.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SourceTreeError
from orchestrator.graphs.globs import matches
from schemas.records import ArtifactRecord, SourceManifest

EXECUTABLE, REGULAR = 0o755, 0o644
_EXEC_BITS = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


@dataclass(frozen=True)
class SourceMount:
    """One source directory of a graph and where it is laid out in each task's workspace."""

    dir: str
    at: str = ""
    exclude: tuple[str, ...] = ()

    def resolve(self, base: Path) -> Path:
        """The directory on this machine (a relative ``dir`` is taken from ``base``, the graph file's folder)."""
        return (base / self.dir) if not os.path.isabs(self.dir) else Path(self.dir)


@dataclass(frozen=True)
class _File:
    rel: str  # path inside the mount
    path: str  # where to read it on disk (a symlink's target)
    st: os.stat_result


def _excluded(rel: str, exclude: Sequence[str]) -> bool:
    return any(matches(g, rel) for g in exclude)


def _walk(root: Path, exclude: Sequence[str]) -> Iterator[_File]:
    """Every file of ``root`` not excluded, checked (see the module docstring); folders in any order."""
    if not root.is_dir():
        raise SourceTreeError(str(root), "is not a directory")
    real_root = os.path.realpath(root)
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as e:
            raise SourceTreeError(directory, f"cannot be listed: {e.strerror or e}") from e
        for entry in entries:
            rel = prefix + entry.name
            if _excluded(rel, exclude):
                continue
            st = _lstat(entry.path)
            if stat.S_ISDIR(st.st_mode):
                stack.append((entry.path, rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                yield _File(rel, entry.path, st)
            elif stat.S_ISLNK(st.st_mode):
                yield _link(entry.path, rel, real_root)
            else:
                raise SourceTreeError(entry.path, "is not a regular file, folder or symlink (exclude it)")


def _lstat(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as e:
        raise SourceTreeError(path, f"cannot be read: {e.strerror or e}") from e


def _link(path: str, rel: str, real_root: str) -> _File:
    """A symlink to a regular file inside the mount, as that file; anything else is refused."""
    target = os.path.realpath(path)
    if not (target == real_root or target.startswith(real_root.rstrip("/") + "/")):
        raise SourceTreeError(path, f"is a symlink leading out of the source tree (to {target}); exclude it")
    try:
        st = os.stat(target)
    except OSError as e:
        raise SourceTreeError(path, f"is a symlink to nothing readable ({os.readlink(path)})") from e
    if not stat.S_ISREG(st.st_mode):
        raise SourceTreeError(path, "is a symlink to a folder or a special file; exclude it or replace it")
    return _File(rel, target, st)


def _at(mount: SourceMount, rel: str) -> str:
    at = mount.at.strip("/")
    return f"{at}/{rel}" if at else rel


def source_paths(mounts: Sequence[SourceMount], base: Path) -> list[str]:
    """The workspace paths the mounts provide, sorted, without reading any file's content."""
    paths: dict[str, str] = {}
    for mount in mounts:
        root = mount.resolve(base)
        for f in _walk(root, mount.exclude):
            _claim(paths, _at(mount, f.rel), f.path)
    return sorted(paths)


def _claim(paths: dict[str, str], ws_path: str, disk: str) -> None:
    earlier = paths.setdefault(ws_path, disk)
    if earlier != disk:
        raise SourceTreeError(disk, f"gives workspace path {ws_path!r}, which {earlier} gives too (two mounts overlap)")


def _record(f: _File, ws_path: str) -> ArtifactRecord:
    try:
        with open(f.path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
            size = fh.tell()
    except OSError as e:
        raise SourceTreeError(f.path, f"cannot be read: {e.strerror or e}") from e
    mode = EXECUTABLE if f.st.st_mode & _EXEC_BITS else REGULAR
    return ArtifactRecord(path=ws_path, digest=digest.hexdigest(), size=size, mode=mode)


def manifest_of_mounts(mounts: Sequence[SourceMount], base: Path) -> SourceManifest:
    """The manifest of every mount together: each file hashed once, at its workspace path, sorted."""
    return walk_manifest(mounts, base)[0]


def walk_manifest(mounts: Sequence[SourceMount], base: Path) -> tuple[SourceManifest, dict[str, str]]:
    """`manifest_of_mounts`, and where on this machine each workspace path was read (what submit uploads)."""
    paths: dict[str, str] = {}
    records: list[ArtifactRecord] = []
    for mount in mounts:
        for f in _walk(mount.resolve(base), mount.exclude):
            ws_path = _at(mount, f.rel)
            _claim(paths, ws_path, f.path)
            records.append(_record(f, ws_path))
    records.sort(key=lambda r: r.path)
    return SourceManifest(files=tuple(records)), paths


def manifest_of(source_dir: str | Path, *, at: str = "", exclude: Sequence[str] = ()) -> SourceManifest:
    """The manifest of one source directory laid out at workspace folder ``at`` (see the module docstring)."""
    return manifest_of_mounts([SourceMount(str(source_dir), at, tuple(exclude))], Path.cwd())

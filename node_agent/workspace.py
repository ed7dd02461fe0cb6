"""Where a task runs, and snapshots of that directory for the scope check.

Two workspace modes (``--workspace``):

- ``task`` (default): each task gets its own directory ``<workdir>/<node>/<graph>/<task>``;
  its attempts share it, so a retry can reuse what an earlier attempt built;
- ``shared``: every task runs in ``<workdir>`` itself, e.g. one checkout of a repository. In
  this mode a scope check sees the changes of every task running at the same time, so give
  scoped work its own node with ``--slots 1`` (or use ``task`` mode) to keep it exact.

Per-run files the agent owns (the quality file) live outside the workspace in
``<workdir>/.niyantra/<node>/<graph>/<task>.<attempt>.<phase>.quality``, so they never count as
changes; the agent removes the file once it has read it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Literal

from node_agent.scope import Entry
from schemas.ids import file_name

WorkspaceMode = Literal["task", "shared"]
WORKSPACE_MODES: tuple[str, ...] = ("task", "shared")
HASH_LIMIT = 4 * 1024 * 1024  # files up to this size are compared by content, bigger ones by mtime
META_DIR = ".niyantra"


def workspace_dir(workdir: Path, mode: WorkspaceMode, node_id: str, graph_id: str, task_id: str) -> Path:
    """The directory a task runs in (created if missing)."""
    path = workdir if mode == "shared" else workdir / node_id / file_name(graph_id) / file_name(task_id)
    if not path.is_dir():  # one stat; mkdir of an existing folder is a failing syscall and an exception
        path.mkdir(parents=True, exist_ok=True)
    return path


def quality_path(workdir: Path, node_id: str, graph_id: str, task_id: str, attempt: int, phase: str) -> Path:
    """Where one run's quality file goes (outside every workspace): its graph's folder of the agent's
    own files is created when missing (a stat per run, not a mkdir of a fresh folder and its removal),
    the file itself is the task's to write."""
    folder = workdir / META_DIR / node_id / file_name(graph_id)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{file_name(task_id)}.{attempt}.{phase}.quality"


def _digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:  # unreadable: compare by metadata, and say why in the digest slot
        return f"unreadable:{e.errno}"
    return h.hexdigest()


def snapshot(root: Path, *, hash_limit: int = HASH_LIMIT, skip: tuple[str, ...] = (META_DIR,)) -> dict[str, Entry]:
    """Path (relative, ``/``-separated) → (kind, size, mtime_ns, digest) of every file and symlink."""
    out: dict[str, Entry] = {}
    stack = [(str(root), "")]
    while stack:
        directory, rel = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:  # vanished or unreadable while walking: nothing to record under it
            continue
        for e in entries:
            path = f"{rel}{e.name}"
            if not rel and e.name in skip:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:  # removed between listing and stat
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((e.path, f"{path}/"))
            elif stat.S_ISLNK(st.st_mode):
                out[path] = ("l", st.st_size, st.st_mtime_ns, os.readlink(e.path))
            elif stat.S_ISREG(st.st_mode):
                digest = _digest(e.path) if st.st_size <= hash_limit else ""
                out[path] = ("f", st.st_size, st.st_mtime_ns, digest)
    return out

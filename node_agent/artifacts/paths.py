"""Workspace path safety: every path a task declares or a manifest names stays inside its workspace.

A path is relative and ``/``-separated. ``a/../b`` is accepted as ``b`` (it stays inside), while
``../x``, ``a/../../b`` and ``/etc/passwd`` are refused by the text alone; a path whose text is
fine but that leads out through a symlink in the workspace is refused once the filesystem is read.
Spaces, colons, ``@``, ``=`` and non-ASCII letters are ordinary file-name characters.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from node_agent.artifacts.errors import UnsafePath


def clean_relpath(path: str) -> str:
    """The normalized workspace-relative form of ``path``, or `UnsafePath` naming it."""
    if not path:
        raise UnsafePath(path, "it is empty")
    if "\0" in path:
        raise UnsafePath(path, "it contains a NUL character")
    if path.startswith("/"):
        raise UnsafePath(path, "it is absolute; give it relative to the workspace")
    norm = posixpath.normpath(path)
    if norm == ".":
        raise UnsafePath(path, "it names the workspace itself, not a file in it")
    if norm == ".." or norm.startswith("../"):
        raise UnsafePath(path, "it climbs out of the workspace with '..'")
    return norm


def is_inside(root: Path, candidate: Path) -> bool:
    """Tell whether the real path of ``candidate`` is ``root``'s real path or below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def resolve_inside(workspace: Path, rel: str) -> Path:
    """``workspace/rel`` if it resolves (through every symlink) inside the workspace, else `UnsafePath`."""
    path = workspace / clean_relpath(rel)
    if not is_inside(workspace, path):
        raise UnsafePath(rel, f"it resolves to {os.path.realpath(path)}, outside the workspace (a symlink leads out)")
    return path


def parent_inside(workspace: Path, rel: str) -> Path:
    """``workspace/rel`` if its parent directory resolves inside the workspace (the last part may be a
    symlink: a layout replaces it, never writes through it), else `UnsafePath`."""
    path = workspace / clean_relpath(rel)
    if not is_inside(workspace, path.parent):
        real = os.path.realpath(path.parent)
        raise UnsafePath(rel, f"its folder resolves to {real}, outside the workspace (a symlink leads out)")
    return path

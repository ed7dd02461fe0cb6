"""Bounded impact: which workspace changes a task's declared scope allows.

A scope is a list of globs relative to the workspace, with ``/`` as separator:

- ``*`` matches within one path segment, ``?`` one character, ``[abc]`` a character class;
- ``**`` matches any number of segments (``deploy/**``, ``**/*.o``);
- a glob that names a directory covers everything below it (``build`` allows ``build/a/b.o``).

An empty scope means the task declared none and is not checked. Changes are compared as
files and symlinks (directories themselves are not reported: an empty directory changes
nothing a build depends on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ChangeKind = Literal["created", "changed", "deleted"]


@dataclass(frozen=True, order=True)
class Change:
    """One file the run created, changed or deleted, by workspace-relative path."""

    path: str
    kind: ChangeKind


@lru_cache(maxsize=1024)
def glob_regex(glob: str) -> re.Pattern[str]:
    """The compiled regular expression of one scope glob."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _normal(glob: str) -> str:
    g = glob.strip().removeprefix("./").rstrip("/")
    return g or "**"


def in_scope(path: str, scope: Iterable[str]) -> bool:
    """Tell whether changing ``path`` (workspace-relative) is allowed by ``scope``."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return any(glob_regex(_normal(g)).match(p) for g in scope for p in prefixes)


Entry = tuple[str, int, int, str]  # (kind "f"|"l", size, mtime_ns, digest or link target)


def diff(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[Change]:
    """Files created, changed or deleted between two snapshots, sorted by path.

    A file counts as changed when its kind, size or content digest differs; when a digest was
    not taken (a file over the hashing limit) a different mtime counts as a change.
    """
    changes: list[Change] = []
    for path in sorted(before.keys() | after.keys()):
        b, a = before.get(path), after.get(path)
        if b is None:
            changes.append(Change(path, "created"))
        elif a is None:
            changes.append(Change(path, "deleted"))
        elif _differs(b, a):
            changes.append(Change(path, "changed"))
    return changes


def _differs(b: Entry, a: Entry) -> bool:
    if b[0] != a[0] or b[1] != a[1]:
        return True
    if b[3] and a[3]:
        return b[3] != a[3]
    return b[2] != a[2]


def violations(changes: Iterable[Change], scope: Iterable[str]) -> list[Change]:
    """The changes outside ``scope`` (none when the scope is empty: the task declared none)."""
    globs = tuple(scope)
    if not globs:
        return []
    return [c for c in changes if not in_scope(c.path, globs)]


def describe(found: Iterable[Change], limit: int = 20) -> str:
    """One line naming the offending paths, for the task's error."""
    items = list(found)
    shown = ", ".join(f"{c.path} ({c.kind})" for c in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"scope violation: changed outside its declared scope: {shown}{more}"

"""Workspace paths and globs as a task declares them: their syntax, and matching them without a disk.

A declared path is relative to the task's workspace and ``/``-separated. A glob uses ``*`` (any
characters within one folder name, dot files included), ``?`` (one character), ``[...]`` (one of a
set, ``[!...]`` none of it) and ``**`` as a whole part (any number of folders, none included), as
Python's pathlib does, so a pattern matches here what an agent's ``Path.glob`` finds on disk.
``a/**`` stands for everything below ``a``. Pure: nothing here reads the filesystem.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from functools import lru_cache

GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Tell whether ``pattern`` is a glob rather than one plain path."""
    return not GLOB_CHARS.isdisjoint(pattern)


def path_problem(path: str) -> str | None:
    """What is wrong with ``path`` as a workspace path or glob, or None if it is fine."""
    if not path:
        return "is empty"
    if "\0" in path or "\n" in path:
        return f"{path!r} contains a NUL or newline character"
    if path.startswith("/"):
        return f"{path!r} is absolute: give it relative to the workspace"
    parts = path.split("/")
    if ".." in parts:
        return f"{path!r} climbs out of the workspace with '..'"
    if any(p in ("", ".") for p in parts[:-1]) or parts[-1] == ".":
        return f"{path!r} has an empty or '.' part: write it as {_tidy(path)!r}"
    for part in parts:
        if "**" in part and part != "**":
            return f"{path!r} is a bad glob: '**' must be a whole part (as in 'a/**/b')"
        if "[" in part and _class_end(part) is None:
            return f"{path!r} is a bad glob: '[' without its closing ']'"
    return None


def _tidy(path: str) -> str:
    tidy = "/".join(p for p in path.split("/") if p not in ("", "."))
    return tidy + ("/" if path.endswith("/") and tidy else "") or "."


def _class_end(part: str) -> int | None:
    """Index just past the first ``[...]`` of ``part`` (fnmatch's rule for a leading ``]``), or None."""
    i = part.index("[") + 1
    if i < len(part) and part[i] == "!":
        i += 1
    if i < len(part) and part[i] == "]":
        i += 1
    end = part.find("]", i)
    return None if end < 0 else end + 1


def literal_prefix(pattern: str) -> str:
    """The folders of ``pattern`` before its first glob part (``src/lib`` for ``src/lib/*.c``)."""
    out: list[str] = []
    for part in pattern.split("/"):
        if is_glob(part):
            break
        out.append(part)
    else:
        out.pop()  # a plain path: its folder
    return "/".join(out)


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression that matches the paths ``pattern`` matches (a valid pattern)."""
    parts = pattern.rstrip("/").split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".+" if last else "(?:[^/]+/)*")
            continue
        out.append(_part_regex(part) + ("" if last else "/"))
    return re.compile("".join(out))


def _part_regex(part: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = i + (_class_end(part[i:]) or 1)
            body = part[i + 1 : end - 1]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def matches(pattern: str, path: str) -> bool:
    """Tell whether workspace path ``path`` is matched by ``pattern`` (a glob, or a plain path or folder)."""
    if not is_glob(pattern):
        plain = pattern.rstrip("/")
        return path == plain or path.startswith(plain + "/")
    return glob_regex(pattern).fullmatch(path) is not None


def may_overlap(a: str, b: str) -> bool:
    """Whether two patterns can match a common path, judged by their literal folders (a cheap upper bound)."""
    pa, pb = literal_prefix(a), literal_prefix(b)
    return not pa or not pb or pa == pb or pa.startswith(pb + "/") or pb.startswith(pa + "/")


class PathIndex:
    """Paths sorted once, so the ones some patterns select are found by look-ups: a plain path or
    folder is a membership test and one range of the sorted paths (those under ``folder/``), and
    only globs test every path. ``select(patterns)`` is the paths that `matches` some pattern, in
    path order; choosing each task's sources out of one tree then costs a few look-ups a pattern."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = sorted(set(paths))
        self._members = frozenset(self.paths)

    def select(self, patterns: Iterable[str]) -> list[str]:
        chosen: set[str] = set()
        regexes = []
        for pattern in patterns:
            if is_glob(pattern):
                regexes.append(glob_regex(pattern))
                continue
            plain = pattern.rstrip("/")
            if plain in self._members:
                chosen.add(plain)
            # below plain/: the paths from "plain/" up to, not including, "plain0" ("0" follows "/")
            chosen.update(self.paths[bisect_left(self.paths, plain + "/") : bisect_left(self.paths, plain + "0")])
        if regexes:
            chosen.update(p for p in self.paths if any(r.fullmatch(p) is not None for r in regexes))
        return sorted(chosen)

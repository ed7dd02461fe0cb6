"""Where a build's folders go in a task's workspace, and its commands rewritten to find them there.

A generator writes the absolute paths of its source and build folders into commands (CMake does,
``-I/home/me/zlib``); on another node neither folder exists. `place` puts them in the workspace:

- the build folder at ``build/`` and the source at ``src/``;
- one folder inside the other: the outer at ``src/`` (or ``build/``), the inner at its place in it;
- when the manifest reaches the source by relative paths that climb out of the build folder
  (Meson's and GN's ``../src/a.c``), their relative position is kept: the build folder at its
  last N names, N being how far the paths climb, so ``build/../src`` still leads to the source.

`PathMap.workspace_path` maps a manifest path (relative to the build folder, or absolute) to its
workspace path, None for a path in neither folder (a system file). `PathMap.command` rewrites
every absolute mention of either folder into ``$NIYANTRA_WORKSPACE/<folder>`` (the agent sets the
variable), quoted right for where it stands in the shell text: bare, inside double quotes, or inside
single quotes as Ninja writes a path with a space in ``$in`` (``'/home/me/a b.c'``). A mention is a
folder only if it ends there or a ``/`` follows (``/tmp/b`` is not in ``/tmp/b2``). Text inside
``$(...)`` or a here-document is treated as the quoting around it (no generator writes those).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

WORKSPACE_VAR = "NIYANTRA_WORKSPACE"
_PATH_CHAR = re.compile(r"[A-Za-z0-9_.+\-]")


def _inside(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` ("" for the folder itself), or None if it is not inside."""
    if path == folder:
        return ""
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _join(at: str, rel: str) -> str:
    return "/".join(p for p in (at, rel) if p)


@dataclass(frozen=True)
class PathMap:
    """The build and source folders of this machine and their folders in the workspace."""

    build_dir: str
    build_at: str
    source_dir: str | None = None
    source_at: str = ""

    def folders(self) -> list[tuple[str, str]]:
        """(machine folder, workspace folder), the deeper folder first so it wins a path in both."""
        pairs = [(self.build_dir, self.build_at)]
        if self.source_dir is not None:
            pairs.append((self.source_dir, self.source_at))
        return sorted(pairs, key=lambda p: -len(p[0]))

    def absolute(self, path: str) -> str:
        """A manifest path on this machine (relative ones are relative to the build folder)."""
        return path if path.startswith("/") else posixpath.normpath(posixpath.join(self.build_dir, path))

    def workspace_path(self, path: str) -> str | None:
        """Where ``path`` is in the workspace, or None if it is in neither folder."""
        full = self.absolute(path)
        for folder, at in self.folders():
            rel = _inside(full, folder)
            if rel is not None:
                return _join(at, rel)
        return None

    def _mentions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, workspace folder) of each absolute mention of a folder in ``text``."""
        found: list[tuple[int, int, str]] = []
        for folder, at in self.folders():
            for m in re.finditer(re.escape(folder.rstrip("/")), text):
                end = m.end()
                if end < len(text) and _PATH_CHAR.match(text[end]):
                    continue
                if any(s <= m.start() < e for s, e, _ in found):
                    continue  # inside a mention of the deeper folder
                found.append((m.start(), end, at))
        return sorted(found)

    def command(self, text: str) -> str:
        """``text`` (shell) with each mention of a folder as ``$NIYANTRA_WORKSPACE/<folder>``, quoted for its place."""
        mentions = self._mentions(text)
        if not mentions:
            return text
        states = _quote_states(text, [s for s, _, _ in mentions])
        out, last = [], 0
        for (start, end, at), state in zip(mentions, states, strict=True):
            out += [text[last:start], _in_quotes(at, state)]
            last = end
        out.append(text[last:])
        return "".join(out)

    def shell_word(self, text: str) -> str:
        """``text`` as one shell word that expands to it with each folder mapped (for file contents)."""
        mentions = self._mentions(text)
        out, last = [], 0
        for start, end, at in mentions:
            if start > last:
                out.append(shlex.quote(text[last:start]))
            out.append(_in_quotes(at, None))
            last = end
        if last < len(text) or not out:
            out.append(shlex.quote(text[last:]))
        return "".join(out)


def _in_quotes(at: str, state: str | None) -> str:
    """The workspace folder ``at`` written where the shell is in quote ``state`` (None, "'" or '"')."""
    tail = "/" + at if at else ""
    if state == '"':
        escaped = re.sub(r'(["\\$`])', r"\\\1", tail)
        return "${" + WORKSPACE_VAR + "}" + escaped
    bare = f'"${WORKSPACE_VAR}"' + (shlex.quote(tail) if tail else "")
    if state == "'":  # close the quote, the variable, reopen: the rest stays literal
        return "'" + f'"${WORKSPACE_VAR}"' + "'" + tail.replace("'", "'\\''")
    return bare


def _quote_states(text: str, positions: list[int]) -> list[str | None]:
    """The shell's quote state (None, "'" or '"') at each of the sorted ``positions`` of ``text``."""
    states: list[str | None] = []
    state: str | None = None
    i, k = 0, 0
    while k < len(positions):
        if i >= positions[k]:
            states.append(state)
            k += 1
            continue
        c = text[i]
        if state == "'":
            state = None if c == "'" else state
        elif c == "\\":
            i += 1  # the next character is escaped (in double quotes too, for our purpose)
        elif c in ("'", '"') and state is None:
            state = c
        elif c == '"' and state == '"':
            state = None
        i += 1
    return states


def _climb(path: str) -> int:
    """How many leading ``..`` a relative path has."""
    parts = path.split("/")
    n = 0
    while n < len(parts) and parts[n] == "..":
        n += 1
    return n


def place(build_dir: str, source_dir: str | None, climb: int = 0) -> PathMap:
    """The workspace folders of a build folder and its source (see the module docstring).

    ``climb`` is how far the manifest's relative paths climb out of the build folder (0: none do).
    """
    build_dir = posixpath.normpath(build_dir)
    if source_dir is None:
        return PathMap(build_dir, "build")
    source_dir = posixpath.normpath(source_dir)
    inner = _inside(build_dir, source_dir)
    if inner is not None:
        return PathMap(build_dir, _join("src", inner), source_dir, "src")
    inner = _inside(source_dir, build_dir)
    if inner is not None:
        return PathMap(build_dir, "build", source_dir, _join("build", inner))
    if climb <= 0:
        return PathMap(build_dir, "build", source_dir, "src")
    names = build_dir.strip("/").split("/")
    build_at = "/".join(names[-climb:])
    source_at = posixpath.normpath(posixpath.join(build_at, posixpath.relpath(source_dir, build_dir)))
    if source_at.startswith(".."):
        source_at = "src"  # unreachable by the climbing paths anyway; keep it inside the workspace
    return PathMap(build_dir, build_at, source_dir, source_at)


def climb_of(paths: list[str]) -> int:
    """The deepest climb out of the build folder among relative manifest paths."""
    return max((_climb(p) for p in paths if not p.startswith("/")), default=0)

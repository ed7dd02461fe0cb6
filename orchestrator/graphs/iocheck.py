"""Validation of what tasks read and write: ``inputs``, ``outputs``, the graph's ``source`` and ``filesets``.

Pure, like `orchestrator.graphs.validation` which calls it; every problem names the file, the task and
the field. A task's path or glob must be relative to its workspace and stay inside it. Across
tasks: no path may be claimed as an output by two tasks (a plain path, a folder holding another
task's output, or a path another task's glob matches; two globs conflict only when equal), and
every input must be provided, by the source tree or by a task's outputs, and when a task's outputs
provide it that task must be among its ``depends_on`` (its dependents get its outputs laid out).
An input glob counts as provided when it matches a source path or a task's plain output, or may
overlap a task's output glob (same literal folders: two globs are not intersected exactly).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.graphs.globs import glob_regex, is_glob, literal_prefix, may_overlap, path_problem
from orchestrator.graphs.problem import Problem
from orchestrator.graphs.sourcetree import SourceMount
from schemas.records import TaskSpec

FILESET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
MOUNT_KEYS = ("dir", "at", "exclude")


def _kind(v: object) -> str:
    return "a table" if isinstance(v, dict) else "a list" if isinstance(v, list) else f"{type(v).__name__} {v!r}"


def _path_list(v: Any, what: str, *, filesets: bool = False) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise ValueError(f"must be a list of {what}, got {_kind(v)}")
    for p in v:
        if filesets and p.startswith("@"):
            if not FILESET_NAME.match(p[1:]):
                raise ValueError(f"{p!r} does not name a fileset (@ then 1-128 of A-Z a-z 0-9 _ . -)")
            continue
        problem = path_problem(p)
        if problem:
            raise ValueError(problem)
    return tuple(dict.fromkeys(v))


def inputs_field(v: Any) -> tuple[str, ...]:
    """A task's ``inputs``: workspace paths, globs, or ``@fileset`` names."""
    return _path_list(v, "workspace paths, globs or @filesets", filesets=True)


def outputs_field(v: Any) -> tuple[str, ...]:
    """A task's ``outputs``: workspace paths or globs."""
    return _path_list(v, "workspace paths or globs")


# --- graph-level fields ---------------------------------------------------------------------


def parse_sources(file: str, raw: Any) -> tuple[tuple[SourceMount, ...], list[Problem]]:
    """``[graph] source``: a directory (laid out at the workspace root) or a list of ``{dir, at, exclude}``."""
    if raw is None:
        return (), []
    here = Problem(file, None, "source", "", scope="graph")
    items = [raw] if isinstance(raw, str | dict) else raw
    if not isinstance(items, list) or not items:
        return (), [here.at(message=f"must be a directory or a list of {{dir, at, exclude}} tables, got {_kind(raw)}")]
    mounts: list[SourceMount] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        mount, why = _mount(item)
        if why:
            problems.append(here.at(message=f"[{i}]: {why}" if len(items) > 1 else why))
        elif mount is not None:
            mounts.append(mount)
    return tuple(mounts), problems


def _mount(item: Any) -> tuple[SourceMount | None, str]:
    if isinstance(item, str):
        item = {"dir": item}
    if not isinstance(item, dict):
        return None, f"must be a directory or a {{dir, at, exclude}} table, got {_kind(item)}"
    unknown = sorted(set(item) - set(MOUNT_KEYS))
    if unknown:
        return None, f"unknown key {unknown[0]!r}; known: {', '.join(MOUNT_KEYS)}"
    d, at, exclude = item.get("dir"), item.get("at", ""), item.get("exclude", [])
    if not isinstance(d, str) or not d:
        return None, "'dir' must be a non-empty directory path"
    if not isinstance(at, str):
        return None, f"'at' must be a workspace folder, got {_kind(at)}"
    if at.strip("/") and (why := path_problem(at.strip("/"))):
        return None, f"'at' {why}"
    if at.strip("/") and is_glob(at):
        return None, f"'at' {at!r} must be a folder, not a glob"
    try:
        excludes = _path_list(exclude, "globs relative to the directory")
    except ValueError as e:
        return None, f"'exclude' {e}"
    return SourceMount(d, at.strip("/"), excludes), ""


def parse_filesets(file: str, raw: Any) -> tuple[dict[str, tuple[str, ...]], list[Problem]]:
    """``[graph.filesets]``: name = list of workspace paths or globs, for tasks' ``@name`` inputs."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [Problem(file, None, "filesets", f"must be a table of name = [paths], got {_kind(raw)}", "graph")]
    out: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for name, paths in raw.items():
        where = Problem(file, None, f"filesets.{name}", "", scope="graph")
        if not FILESET_NAME.match(str(name)):
            problems.append(where.at(message="is not a fileset name (1-128 of A-Z a-z 0-9 _ . -)"))
            continue
        try:
            out[str(name)] = _path_list(paths, "workspace paths or globs")
        except ValueError as e:
            problems.append(where.at(message=str(e)))
    return out, problems


# --- across tasks ---------------------------------------------------------------------------


class _Outputs:
    """Every task's declared outputs, indexed so that a path finds who claims it without a scan."""

    def __init__(self, specs: Sequence[TaskSpec]) -> None:
        self.plain: dict[str, str] = {}  # path (folder outputs without their trailing /) -> task
        self.globs: dict[str, list[tuple[str, str]]] = defaultdict(list)  # literal folder -> (glob, task)
        self.conflicts: list[tuple[str, str, str]] = []  # (task, output, earlier task)
        for t in specs:
            for out in t.outputs:
                self._add(t.id, out)

    def _add(self, task: str, out: str) -> None:
        if is_glob(out):
            prefix = literal_prefix(out)
            for other, owner in self.globs[prefix]:
                if other == out and owner != task:
                    self.conflicts.append((task, out, owner))
            self.globs[prefix].append((out, task))
            return
        path = out.rstrip("/")
        owner = self.plain.setdefault(path, task)
        if owner != task:
            self.conflicts.append((task, out, owner))

    def owners(self, path: str) -> list[str]:
        """The tasks whose outputs hold workspace path ``path`` (its own entry, a folder above it, a glob)."""
        found: list[str] = []
        parts = path.split("/")
        for i in range(len(parts), 0, -1):
            owner = self.plain.get("/".join(parts[:i]))
            if owner is not None:
                found.append(owner)
        for i in range(len(parts)):
            for glob, owner in self.globs.get("/".join(parts[:i]), ()):
                if glob_regex(glob).fullmatch(path):
                    found.append(owner)
        return found

    def glob_owners(self, pattern: str) -> list[str]:
        """The tasks with an output that input glob ``pattern`` may take."""
        rx, prefix = glob_regex(pattern), literal_prefix(pattern)
        found = [
            owner
            for path, owner in self.plain.items()
            if rx.fullmatch(path) or prefix == path or prefix.startswith(path + "/")  # a folder output
        ]
        for globs in self.globs.values():
            found += [owner for glob, owner in globs if may_overlap(glob, pattern)]
        return found


def _overlaps(outputs: _Outputs) -> list[tuple[str, str, str]]:
    """Plain outputs under another task's folder output or matched by another task's glob."""
    out: list[tuple[str, str, str]] = []
    for path, task in outputs.plain.items():
        for owner in outputs.owners(path):
            if owner != task:
                out.append((task, path, owner))
                break
    return out


class _Provided:
    """Whether the source tree provides a path, with its folders for inputs that name one."""

    def __init__(self, paths: Collection[str] | None) -> None:
        self.known = paths is not None  # None: the source tree was not read, so it may provide anything
        self.files = frozenset(paths or ())
        self.folders = frozenset(p[:i] for p in self.files for i in range(len(p)) if p[i] == "/")

    def has(self, pattern: str) -> bool:
        if not self.known:
            return True
        if not is_glob(pattern):
            plain = pattern.rstrip("/")
            return plain in self.files or plain in self.folders
        rx = glob_regex(pattern)
        return any(rx.fullmatch(p) for p in self.files)


def check_io(
    file: str,
    specs: Sequence[TaskSpec],
    filesets: dict[str, tuple[str, ...]],
    source_paths: Collection[str] | None,
) -> list[Problem]:
    """Problems of outputs claimed twice and of inputs nothing provides (see the module docstring)."""
    if not any(t.inputs or t.outputs for t in specs) and not filesets:
        return []
    outputs = _Outputs(specs)
    problems = [
        Problem(file, task, "outputs", f"{out!r} is also claimed by task {owner!r}")
        for task, out, owner in outputs.conflicts + _overlaps(outputs)
    ]
    source = _Provided(source_paths)
    producers = _memo(lambda p: outputs.glob_owners(p) if is_glob(p) else outputs.owners(p))
    checked = {name: tuple(_entry(p, source, producers) for p in paths) for name, paths in filesets.items()}
    for t in specs:
        problems += _task_inputs(file, t, checked, source, producers)
    return problems


def _memo(fn: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    cache: dict[str, list[str]] = {}

    def get(key: str) -> list[str]:
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = fn(key)
        return hit

    return get


@dataclass(frozen=True)
class _Entry:
    """One input path as checked once: the tasks that produce it, or why nothing provides it."""

    path: str
    owners: tuple[str, ...]
    unprovided: bool


def _entry(path: str, source: _Provided, producers: Callable[[str], list[str]]) -> _Entry:
    owners = tuple(sorted(set(producers(path))))
    return _Entry(path, owners, not owners and not source.has(path))


def _task_inputs(
    file: str,
    t: TaskSpec,
    filesets: dict[str, tuple[_Entry, ...]],
    source: _Provided,
    producers: Callable[[str], list[str]],
) -> list[Problem]:
    problems: list[Problem] = []
    deps = set(t.depends_on)
    for name in t.inputs:
        if not name.startswith("@"):
            entries: tuple[_Entry, ...] = (_entry(name, source, producers),)
        elif name[1:] in filesets:
            entries = filesets[name[1:]]
        else:
            known = ", ".join(sorted(filesets)) or "none"
            problems.append(Problem(file, t.id, "inputs", f"{name!r} names no fileset of the graph (known: {known})"))
            continue
        via = f" (in fileset {name!r})" if name.startswith("@") else ""
        for e in entries:
            missing = [o for o in e.owners if o not in deps and o != t.id]
            if missing:
                why = f"{e.path!r} is an output of task {missing[0]!r}: add it to depends_on"
            elif e.unprovided or e.owners == (t.id,):
                why = f"{e.path!r} is provided by no task's outputs and no file of the graph's source"
            else:
                continue
            problems.append(Problem(file, t.id, "inputs", why + via))
    return problems

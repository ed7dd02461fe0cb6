"""Task graph files: parse TOML into a `GraphSpec` and validate it, reporting every problem.

Parsing and validation are pure: they read only the bytes given. A problem names the file,
the task id and the field, so a user can fix all of them in one pass.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import GraphFileError
from schemas.events import TaskSpec
from schemas.subjects import is_safe_id


@dataclass(frozen=True)
class GraphSpec:
    """A validated task graph, ready to submit."""

    id: str
    title: str
    tasks: tuple[TaskSpec, ...]
    source: str = ""


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"18m"`` or ``"1h30m"``; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s
    raise ValueError(f"{value!r} is not a duration (use seconds, '90s', '18m' or '1h30m')")


def find_cycle(deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """One dependency cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, sorted order)."""
    color: dict[str, int] = {}
    for root in sorted(deps):
        if color.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = 1
                path.append(node)
            children = sorted(d for d in deps.get(node, ()) if d in deps)
            if i < len(children):
                stack.append((node, i + 1))
                child = children[i]
                if color.get(child) == 1:
                    return path[path.index(child) :] + [child]
                if not color.get(child):
                    stack.append((child, 0))
            else:
                color[node] = 2
                path.pop()
    return None


def _task_problems(where: str, raw: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    problems: list[str] = []
    fields: dict[str, Any] = {}
    tid = raw.get("id")
    label = f"{where}: task {tid!r}" if tid is not None else f"{where}: task"
    if not isinstance(tid, str) or not is_safe_id(tid):
        problems.append(f"{label}: field 'id' must be 1-128 characters from A-Z a-z 0-9 _ -")
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        problems.append(f"{label}: field 'command' is missing or empty")
    deps = raw.get("depends_on", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        problems.append(f"{label}: field 'depends_on' must be a list of task ids")
        deps = []
    fields["depends_on"] = tuple(deps)
    problems += _scalar_fields(label, raw, fields)
    return problems, fields


def _scalar_fields(label: str, raw: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name in ("estimate", "timeout"):
        if name in raw:
            try:
                fields[f"{name}_s"] = parse_duration(raw[name])
            except ValueError as e:
                problems.append(f"{label}: field '{name}': {e}")
    for name, lo, hi in (("max_attempts", 1, 100), ("tier", 1, 3)):
        v = raw.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
            problems.append(f"{label}: field '{name}' must be an integer from {lo} to {hi}")
        elif v is not None:
            fields[name] = v
    for name in ("title", "type"):
        if name in raw and not isinstance(raw[name], str):
            problems.append(f"{label}: field '{name}' must be a string")
        elif name in raw:
            fields[name] = raw[name]
    return problems


def build_graph(path: str, doc: dict[str, Any]) -> GraphSpec:
    """Validate a parsed document; raise `GraphFileError` listing every problem found."""
    problems: list[str] = []
    graph = doc.get("graph")
    if not isinstance(graph, dict):
        raise GraphFileError(path, [f"{path}: missing [graph] table with an 'id'"])
    gid = graph.get("id")
    if not isinstance(gid, str) or not is_safe_id(gid):
        problems.append(f"{path}: graph field 'id' must be 1-128 characters from A-Z a-z 0-9 _ -")
    raw_tasks = doc.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise GraphFileError(path, problems + [f"{path}: no [[tasks]] defined"])
    specs: list[TaskSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_tasks):
        if not isinstance(raw, dict):
            problems.append(f"{path}: tasks[{i}] is not a table")
            continue
        task_problems, fields = _task_problems(path, raw)
        problems += task_problems
        tid = raw.get("id")
        if isinstance(tid, str):
            if tid in seen:
                problems.append(f"{path}: task {tid!r}: field 'id' duplicates an earlier task")
            seen.add(tid)
        if not task_problems:
            specs.append(TaskSpec(id=tid, command=raw["command"], **fields))
    problems += _edge_problems(path, specs)
    if problems:
        raise GraphFileError(path, problems)
    return GraphSpec(id=gid, title=str(graph.get("title", "")), tasks=tuple(specs), source=path)


def _edge_problems(path: str, specs: list[TaskSpec]) -> list[str]:
    ids = {t.id for t in specs}
    problems = [
        f"{path}: task {t.id!r}: field 'depends_on' names unknown task {d!r}"
        for t in specs
        for d in t.depends_on
        if d not in ids
    ]
    problems += [
        f"{path}: task {t.id!r}: field 'depends_on' names the task itself" for t in specs if t.id in t.depends_on
    ]
    cycle = find_cycle({t.id: tuple(d for d in t.depends_on if d != t.id) for t in specs})
    if cycle:
        problems.append(f"{path}: task {cycle[0]!r}: field 'depends_on' forms a cycle: {' -> '.join(cycle)}")
    return problems


def load_graph(path: str | Path) -> GraphSpec:
    """Read, parse and validate a TOML graph file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise GraphFileError(str(p), [f"{p}: cannot read: {e.strerror or e}"]) from e
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GraphFileError(str(p), [f"{p}: not valid TOML: {e}"]) from e
    return build_graph(str(p), doc)

"""Validation of a graph document (parsed TOML or JSON) into a `GraphSpec`, reporting every problem.

Pure: the input is a plain dict as a parser produced it, the output a `GraphSpec` or a
`GraphFileError` whose problems each name the file, the task id and the field. Checks run per
task, then across tasks (duplicates, unknown dependencies, cycles), so a user sees all their
mistakes in one pass.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import GraphFileError
from orchestrator.graphs.iocheck import check_io, inputs_field, outputs_field, parse_filesets, parse_sources
from orchestrator.graphs.problem import Problem
from orchestrator.graphs.shape import find_cycles, topological_order
from orchestrator.graphs.sourcetree import SourceMount
from schemas.events import ArtifactRecord, FollowUpRule, TaskSpec
from schemas.ids import id_problem

DEFAULT_MAX_TASKS = 100_000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_ATTEMPTS_LIMIT = 100


@dataclass(frozen=True)
class Limits:
    """Size limits a graph must respect (options of `validate` and `submit`)."""

    max_tasks: int = DEFAULT_MAX_TASKS
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class GraphSpec:
    """A validated task graph, ready to submit."""

    id: str
    title: str
    tasks: tuple[TaskSpec, ...]
    source: str = ""
    rules: tuple[FollowUpRule, ...] = ()
    generation_limit: int = 100
    backlog_priority: int | None = None  # set by `niyantra backlog add`, never by the file
    sources: tuple[SourceMount, ...] = ()  # [graph] source: the directories laid out in every workspace
    filesets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source_tree: str = ""  # set at submit from the walked sources: the manifest's digest and files
    source_files: tuple[ArtifactRecord, ...] = ()
    source_origins: dict[str, str] = field(default_factory=dict)  # workspace path -> file read at submit (uploaded)
    cache: bool = True  # [graph] cache = false: nothing of the graph is reused or recorded
    uncached: tuple[str, ...] = ()  # tasks with cache = false
    cache_domain: str = ""  # [graph] cache_domain: the trust domain ("": the graph file as submitted)
    cache_trusts: tuple[str, ...] = ()  # [graph] cache_trusts: other domains whose entries it may reuse


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_duration_cache: dict[str, float] = {}
_STR = {str}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"18m"``, ``"1h30m"`` or ``"2d"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        if value != value or value == float("inf"):
            raise ValueError(f"{value!r} is not a finite duration")
        return float(value)
    if isinstance(value, str):
        cached = _duration_cache.get(value)
        if cached is not None:
            return cached
        seconds = _parse_duration_text(value)
        if len(_duration_cache) < 10_000:
            _duration_cache[value] = seconds
        return seconds
    raise ValueError(f"{value!r} is not a duration (use seconds, '90s', '18m' or '1h30m')")


def _parse_duration_text(value: str) -> float:
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"{value!r} is negative")
    try:
        return parse_duration(float(text)) if text else _bad_duration(value)
    except ValueError:
        pass
    m = _DURATION.match(value)
    if m and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    return _bad_duration(value)


def _bad_duration(value: str) -> float:
    raise ValueError(f"{value!r} is not a duration (use seconds, '90s', '18m' or '1h30m')")


# --- fields -------------------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _type_name(v: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return f"{names.get(type(v), type(v).__name__)} {v!r}" if not isinstance(v, list | dict) else names[type(v)]


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {_type_name(v)}")
    return v


def _command(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string" + ("" if isinstance(v, str) else f", got {_type_name(v)}"))
    return v


def _int_range(lo: int, hi: int) -> Convert:
    def convert(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"must be an integer from {lo} to {hi}, got {_type_name(v)}")
        return v

    return convert


def _priority(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"must be an integer, got {_type_name(v)}")
    return v


def _duration(v: Any) -> float:
    return parse_duration(v)


def _positive_duration(v: Any) -> float:
    s = parse_duration(v)
    if s <= 0:
        raise ValueError(f"{v!r} must be longer than 0s")
    return s


def _id_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or (v and not set(map(type, v)) <= _STR):
        raise ValueError(f"must be a list of task ids, got {_type_name(v)}")
    return tuple(v)


def _env_names(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(d, str) for d in v):
        raise ValueError(f"must be a list of environment variable names, got {_type_name(v)}")
    bad = [n for n in v if not _ENV_NAME.match(n)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an environment variable name (letters, digits, _)")
    return tuple(dict.fromkeys(v))


def _scope(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(d, str) and d for d in v):
        raise ValueError(f"must be a list of glob paths, got {_type_name(v)}")
    for g in v:
        if g.startswith("/") or ".." in g.split("/"):
            raise ValueError(f"{g!r} must be relative to the workspace and stay inside it (no leading / or ..)")
    return tuple(v)


def _labels(v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise ValueError(f"must be a table of key = value, got {_type_name(v)}")
    out: dict[str, str] = {}
    for k, val in v.items():
        if isinstance(val, bool):
            val = str(val).lower()
        elif isinstance(val, int | float | str):
            val = str(val)
        else:
            raise ValueError(f"label {k!r} must be a string or number, got {_type_name(val)}")
        out[str(k)] = val
    return out


# field name in the file -> (name in TaskSpec, converter)
TASK_FIELDS: dict[str, tuple[str, Convert]] = {
    "id": ("id", _string),
    "title": ("title", _string),
    "command": ("command", _command),
    "depends_on": ("depends_on", _id_list),
    "type": ("type", _string),
    "estimate": ("estimate_s", _duration),
    "timeout": ("timeout_s", _positive_duration),
    "max_attempts": ("max_attempts", _int_range(1, MAX_ATTEMPTS_LIMIT)),
    "tier": ("tier", _int_range(1, 3)),
    "preflight": ("preflight", _command),
    "scope": ("scope", _scope),
    "labels": ("labels", _labels),
    "env": ("env", _env_names),
    "priority": ("priority", _priority),
    "inputs": ("inputs", inputs_field),
    "outputs": ("outputs", outputs_field),
}
_PLAIN = frozenset({"id", "title", "type", "command"})  # file name == TaskSpec name, any string
DEFAULTABLE: tuple[str, ...] = ("type", "estimate", "timeout", "max_attempts", "tier", "preflight", "scope", "labels")
DEFAULTABLE += ("env", "priority", "inputs")
GRAPH_FIELDS: tuple[str, ...] = ("id", "title", "description", "defaults", "generation_limit", "source", "filesets")
GRAPH_FIELDS += ("cache", "cache_domain", "cache_trusts")
TOP_LEVEL = ("graph", "tasks", "rules")


def _unknown(where: Problem, keys: object, known: tuple[str, ...] | dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for k in keys:  # type: ignore[attr-defined]
        if k not in known:
            near = difflib.get_close_matches(str(k), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(known)}"
            out.append(where.at(field=str(k), message=f"unknown key{hint}"))
    return out


def _defaults(file: str, graph: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    raw = graph.get("defaults", {})
    here = Problem(file, None, "defaults", "")
    if not isinstance(raw, dict):
        return {}, [here.at(message=f"must be a table, got {_type_name(raw)}")]
    problems = _unknown(Problem(file, None, None, "", scope="graph.defaults"), raw, DEFAULTABLE)
    out: dict[str, Any] = {}
    for key in DEFAULTABLE:
        if key in raw:
            name, convert = TASK_FIELDS[key]
            try:
                out[name] = convert(raw[key])
            except ValueError as e:
                problems.append(Problem(file, None, key, str(e), scope="graph.defaults"))
    return out, problems


def _task(file: str, index: int, raw: Any, defaults: dict[str, Any]) -> tuple[TaskSpec | None, list[Problem]]:
    if type(raw) is not dict:
        return None, [Problem(file, None, None, f"tasks[{index}] must be a table, got {_type_name(raw)}")]
    tid = raw.get("id")
    who = tid if isinstance(tid, str) and tid else f"#{index + 1}"
    problems: list[Problem] = []
    fields = dict(defaults)
    for key, value in raw.items():
        if key in _PLAIN and type(value) is str:  # the common fields, checked without a call
            fields[key] = value
            continue
        spec = TASK_FIELDS.get(key)
        if key == "cache":  # not a TaskSpec field: the graph lists the uncached tasks (`GraphSpec.uncached`)
            if not isinstance(value, bool):
                problems.append(Problem(file, who, key, f"must be true or false, got {_type_name(value)}"))
            continue
        if spec is None:
            problems += _unknown(Problem(file, who, None, ""), (key,), TASK_FIELDS)
            continue
        name, convert = spec
        try:
            fields[name] = convert(value)
        except ValueError as e:
            problems.append(Problem(file, who, key, str(e)))
    _required(file, who, raw, problems)
    if defaults:
        _merge_defaults(raw, defaults, fields)
    if fields.get("tier", 1) == 2 and not fields.get("preflight"):
        problems.append(Problem(file, who, "preflight", "is required for a tier 2 task"))
    if problems:
        return None, problems
    return TaskSpec(**fields), problems


def _required(file: str, who: str, raw: dict[str, Any], problems: list[Problem]) -> None:
    """The id (a safe subject token) and a non-empty command."""
    tid = raw.get("id")
    if tid is None:
        problems.append(Problem(file, who, "id", "is missing"))
    elif isinstance(tid, str) and (problem := id_problem(tid)) is not None:
        problems.append(Problem(file, who, "id", problem))
    command = raw.get("command")
    if command is None:
        problems.append(Problem(file, who, "command", "is missing"))
    elif type(command) is str and not command.strip():
        problems.append(Problem(file, who, "command", "must be a non-empty string"))


def _merge_defaults(raw: dict[str, Any], defaults: dict[str, Any], fields: dict[str, Any]) -> None:
    """Labels, env and inputs from the defaults add to the task's own; other fields are overridden."""
    if "labels" in raw and "labels" in defaults and isinstance(fields.get("labels"), dict):
        fields["labels"] = {**defaults["labels"], **fields["labels"]}
    for key in ("env", "inputs"):
        if key in raw and key in defaults and isinstance(fields.get(key), tuple):
            fields[key] = tuple(dict.fromkeys((*defaults[key], *fields[key])))


def _edges(file: str, edges: dict[str, tuple[str, ...]]) -> list[Problem]:
    """Unknown and self dependencies, and cycles, over every task whose id and depends_on parse."""
    ids = edges.keys()
    problems: list[Problem] = []
    for tid, ds in edges.items():
        for d in ds:
            if d == tid:
                problems.append(Problem(file, tid, "depends_on", "names the task itself"))
            elif d not in ids:
                near = difflib.get_close_matches(d, sorted(ids), n=1, cutoff=0.8)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                problems.append(Problem(file, tid, "depends_on", f"names unknown task {d!r}{hint}"))
    if problems:
        deps = {t: tuple(d for d in ds if d != t and d in ids) for t, ds in edges.items()}
    else:
        deps = edges
        if topological_order(deps) is not None:  # the common case: acyclic, one linear pass
            return problems
    for cycle in find_cycles(deps):
        problems.append(Problem(file, cycle[0], "depends_on", f"forms a cycle: {' -> '.join(cycle)}"))
    return problems


def _id_and_deps(raw: Any) -> tuple[str | None, tuple[str, ...]]:
    """Id and dependencies of a task that has other problems, so edges are still checked."""
    tid = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(tid, str) or not tid:
        return None, ()
    try:
        return tid, _id_list(raw.get("depends_on", []))
    except ValueError:
        return tid, ()


def _with_cache(file: str, graph: dict[str, Any], raw_tasks: list[Any], spec: GraphSpec) -> GraphSpec:
    """The graph's cache settings ([graph] cache, cache_domain, cache_trusts; a task's cache = false)."""
    if not any(k in graph for k in ("cache", "cache_domain", "cache_trusts")) and not any(
        "cache" in r for r in raw_tasks
    ):
        return spec  # (every task is a table here: a broken one was reported above)
    problems: list[Problem] = []
    on, domain, trusts = graph.get("cache", True), graph.get("cache_domain", ""), graph.get("cache_trusts", [])
    if not isinstance(on, bool):
        problems.append(Problem(file, None, "cache", f"must be true or false, got {_type_name(on)}", scope="graph"))
    if not isinstance(domain, str):
        problems.append(Problem(file, None, "cache_domain", f"must be a string, got {_type_name(domain)}", "graph"))
    if not isinstance(trusts, list) or not all(isinstance(d, str) and d for d in trusts):
        what = f"must be a list of domain names, got {_type_name(trusts)}"
        problems.append(Problem(file, None, "cache_trusts", what, scope="graph"))
    if problems:
        raise GraphFileError(file, problems)
    uncached = tuple(r["id"] for r in raw_tasks if r.get("cache") is False)
    return dataclasses.replace(
        spec, cache=on, uncached=uncached, cache_domain=domain, cache_trusts=tuple(dict.fromkeys(trusts))
    )


def build_graph(
    file: str, doc: Any, limits: Limits | None = None, source_paths: Collection[str] | None = None
) -> GraphSpec:
    """Validate a parsed document; raise `GraphFileError` listing every problem found.

    ``source_paths`` are the workspace paths the graph's ``source`` provides (`sourcetree.source_paths`);
    None when they were not read, so inputs are then not checked against the source tree.

    The cyclic garbage collector is paused meanwhile: validation allocates one long-lived
    object per task and field and no cycles, and the collector's passes over them cost more
    than a third of the time on a 100,000-task graph.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_graph(file, doc, limits or Limits(), source_paths)
    finally:
        if was_enabled:
            gc.enable()


def _io(
    file: str, graph: dict[str, Any], specs: list[TaskSpec], source_paths: Collection[str] | None
) -> tuple[tuple[SourceMount, ...], dict[str, tuple[str, ...]], list[Problem]]:
    """The graph's source and filesets, and the problems of every task's inputs and outputs."""
    mounts, problems = parse_sources(file, graph.get("source"))
    filesets, more = parse_filesets(file, graph.get("filesets"))
    if not mounts and "source" not in graph:
        source_paths = ()  # no source: every input must be some task's output
    return mounts, filesets, problems + more + check_io(file, specs, filesets, source_paths)


def _build_graph(file: str, doc: Any, limits: Limits, source_paths: Collection[str] | None) -> GraphSpec:
    if not isinstance(doc, dict):
        raise GraphFileError(file, [Problem(file, None, None, "must be a table with [graph] and [[tasks]]")])
    problems = _unknown(Problem(file, None, None, "", scope="document"), doc, TOP_LEVEL)
    graph = doc.get("graph")
    if not isinstance(graph, dict):
        problems.append(Problem(file, None, "graph", "is missing: add a [graph] table with an 'id'"))
        graph = {}
    problems += _unknown(Problem(file, None, None, "", scope="graph"), graph, GRAPH_FIELDS)
    gid = graph.get("id")
    if (what := "is missing" if gid is None else id_problem(gid)) is not None:
        problems.append(Problem(file, None, "id", what if gid is None else f"{what}, got {gid!r}", scope="graph"))
    title = graph.get("title", "")
    if not isinstance(title, str):
        problems.append(Problem(file, None, "title", f"must be a string, got {_type_name(title)}", scope="graph"))
    defaults, more = _defaults(file, graph)
    problems += more
    raw_tasks = doc.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        problems.append(Problem(file, None, "tasks", "no tasks: add at least one [[tasks]] table"))
        raise GraphFileError(file, problems)
    if len(raw_tasks) > limits.max_tasks:
        over = f"{len(raw_tasks)} tasks is over the limit of {limits.max_tasks} (--max-tasks)"
        problems.append(Problem(file, None, "tasks", over))
        raise GraphFileError(file, problems)
    specs: list[TaskSpec] = []
    edges: dict[str, tuple[str, ...]] = {}
    for i, raw in enumerate(raw_tasks):
        spec, task_problems = _task(file, i, raw, defaults)
        problems += task_problems
        tid: str | None
        if spec is not None:
            specs.append(spec)
            tid, deps = spec.id, spec.depends_on
        else:
            tid, deps = _id_and_deps(raw)
        if tid is None:
            continue
        if tid in edges:
            problems.append(Problem(file, tid, "id", "duplicates an earlier task"))
        else:
            edges[tid] = deps
    problems += _edges(file, edges)
    mounts, filesets, more = _io(file, graph, specs, source_paths)
    problems += more
    from orchestrator.graphs.rulecheck import check_rules  # it uses this module's field checks

    rules, limit, more = check_rules(file, doc.get("rules"), graph.get("generation_limit"), defaults, set(edges))
    problems += more
    if problems:
        raise GraphFileError(file, problems)
    assert isinstance(gid, str) and isinstance(title, str)
    graph_spec = GraphSpec(id=gid, title=title, tasks=tuple(specs), source=file, rules=rules, generation_limit=limit)
    graph_spec = _with_cache(file, graph, raw_tasks, graph_spec)
    return dataclasses.replace(graph_spec, sources=mounts, filesets=filesets) if mounts or filesets else graph_spec

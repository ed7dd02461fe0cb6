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
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import GraphFileError
from orchestrator.graphs.iocheck import check_io, parse_filesets, parse_sources
from orchestrator.graphs.problem import Problem
from orchestrator.graphs.rulecheck import check_rules
from orchestrator.graphs.shape import find_cycles, topological_order
from orchestrator.graphs.sourcetree import SourceMount
from orchestrator.graphs.taskfields import id_list, parse_defaults, parse_task, type_name, unknown_keys
from schemas.ids import id_problem
from schemas.records import ArtifactRecord, FollowUpRule, TaskSpec

DEFAULT_MAX_TASKS = 100_000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


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


GRAPH_FIELDS: tuple[str, ...] = ("id", "title", "description", "defaults", "generation_limit", "source", "filesets")
GRAPH_FIELDS += ("cache", "cache_domain", "cache_trusts")
TOP_LEVEL = ("graph", "tasks", "rules")


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
        return tid, id_list(raw.get("depends_on", []))
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
        problems.append(Problem(file, None, "cache", f"must be true or false, got {type_name(on)}", scope="graph"))
    if not isinstance(domain, str):
        problems.append(Problem(file, None, "cache_domain", f"must be a string, got {type_name(domain)}", "graph"))
    if not isinstance(trusts, list) or not all(isinstance(d, str) and d for d in trusts):
        what = f"must be a list of domain names, got {type_name(trusts)}"
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
    problems = unknown_keys(Problem(file, None, None, "", scope="document"), doc, TOP_LEVEL)
    graph = doc.get("graph")
    if not isinstance(graph, dict):
        problems.append(Problem(file, None, "graph", "is missing: add a [graph] table with an 'id'"))
        graph = {}
    problems += unknown_keys(Problem(file, None, None, "", scope="graph"), graph, GRAPH_FIELDS)
    gid = graph.get("id")
    if (what := "is missing" if gid is None else id_problem(gid)) is not None:
        problems.append(Problem(file, None, "id", what if gid is None else f"{what}, got {gid!r}", scope="graph"))
    title = graph.get("title", "")
    if not isinstance(title, str):
        problems.append(Problem(file, None, "title", f"must be a string, got {type_name(title)}", scope="graph"))
    defaults, more = parse_defaults(file, graph)
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
        spec, task_problems = parse_task(file, i, raw, defaults)
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

    rules, limit, more = check_rules(file, doc.get("rules"), graph.get("generation_limit"), defaults, set(edges))
    problems += more
    if problems:
        raise GraphFileError(file, problems)
    assert isinstance(gid, str) and isinstance(title, str)
    graph_spec = GraphSpec(id=gid, title=title, tasks=tuple(specs), source=file, rules=rules, generation_limit=limit)
    graph_spec = _with_cache(file, graph, raw_tasks, graph_spec)
    return dataclasses.replace(graph_spec, sources=mounts, filesets=filesets) if mounts or filesets else graph_spec

"""Build edges into a graph document: one task per edge that the chosen targets need.

Pure: a parsed `Manifest`, a `PathMap` and what the folders hold in, a plain graph document (the
dict a TOML graph file gives) out, for `orchestrator.graphs.validation.build_graph`.

- Targets: the given ones, else the manifest's ``default`` statements, else every output no edge
  reads (Ninja's rule). A target no edge produces is an error naming it and close names.
- Edges: the closure of the targets over explicit, implicit and order-only inputs (and ``|@``
  validations, which join the build but are nobody's dependency). ``phony`` edges are aliases,
  resolved to the edges behind them; ``generator`` edges (re-running CMake) are left out, as is
  everything only they lead to.
- Per task: id = its first output as the manifest writes it (an absolute one by its workspace
  path); ``command`` = make the outputs' folders (Ninja does), ``cd`` to the build folder (Ninja runs
  commands there), write the ``rspfile`` if the rule has one, then the command with both folders
  mapped (`PathMap.command`); ``depends_on`` = the edges producing any of its inputs; ``inputs`` =
  its explicit and implicit input files (built ones and ones the folders hold); ``outputs`` =
  explicit and implicit outputs. Order-only inputs order and lay out, they are not inputs.
- A depfile (``deps = gcc``/``depfile``) names headers only after a first build, so an edge with
  one also reads the fileset ``@undeclared``: every file of the source and build folders that no
  edge names as an explicit input. Conservative (a changed header reruns every compile, a changed
  ``.c`` only its own), never stale.
- Estimates: a task's ``estimate`` is its first output's duration in ``options.estimates``
  (``.ninja_log`` of an earlier build), when there is one.
- The graph's ``source``: the source folder and the build folder as configured (without the
  outputs a previous build left there, the depfiles, ``.ninja_log``/``.ninja_deps`` and the
  generator's own files), each at its workspace folder.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NinjaFileError
from orchestrator.graphs.ninja.manifest import Edge, Manifest, canonical
from orchestrator.graphs.ninja.pathmap import PathMap, climb_of
from orchestrator.graphs.ninja.scope import shell_escape

UNDECLARED = "undeclared"
NINJA_STATE = (".ninja_log", ".ninja_deps")
GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


@dataclass(frozen=True)
class ImportOptions:
    """What to import: the graph's id and title and the targets (none: the default ones)."""

    graph_id: str
    title: str = ""
    targets: tuple[str, ...] = ()
    estimates: dict[str, float] = field(default_factory=dict)  # output path -> seconds (`.ninja_log`)


@dataclass
class _Closure:
    edges: list[int] = field(default_factory=list)  # indices into manifest.edges, in file order
    deps: dict[int, set[int]] = field(default_factory=dict)


def manifest_paths(manifest: Manifest) -> list[str]:
    """Every path the manifest names (for `pathmap.climb_of`)."""
    out: list[str] = []
    for e in manifest.edges:
        out += [*e.all_outputs(), *e.inputs, *e.implicit, *e.order_only]
    return out


def build_mounts(manifest: Manifest, paths: PathMap, build_files: Collection[str]) -> list[dict[str, Any]]:
    """The graph's ``source``: source and build folders, leaving out what is not configured input.

    ``build_files`` are the paths (relative to the build folder) of the files there now.
    """
    present = set(build_files)
    leave = {p for p in NINJA_STATE if p in present}
    for e in manifest.edges:
        own = list(e.all_outputs())
        if e.generator:
            own += [*e.inputs, *e.implicit]
        if e.variables.get("depfile"):
            own.append(e.variables["depfile"])
        leave.update(r for p in own if (r := _build_relative(paths, p)) is not None and r in present)
    mounts: list[dict[str, Any]] = []
    if paths.source_dir is not None:
        inner = _inside_rel(paths.build_dir, paths.source_dir)
        mounts.append({"dir": paths.source_dir, "at": paths.source_at, "exclude": [inner] if inner else []})
    inner = _inside_rel(paths.source_dir, paths.build_dir) if paths.source_dir else None
    exclude = sorted(p.translate(GLOB_SPECIAL) for p in leave) + ([inner] if inner else [])
    mounts.append({"dir": paths.build_dir, "at": paths.build_at, "exclude": exclude})
    return mounts


def _inside_rel(path: str, folder: str) -> str | None:
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _build_relative(paths: PathMap, p: str) -> str | None:
    full = paths.absolute(p)
    return "" if full == paths.build_dir else _inside_rel(full, paths.build_dir)


def graph_document(
    manifest: Manifest, paths: PathMap, options: ImportOptions, mounts: list[dict[str, Any]], available: Collection[str]
) -> dict[str, Any]:
    """The graph document of the targets' edges (see the module docstring).

    ``available`` are the workspace paths the ``mounts`` provide (`sourcetree.source_paths`).
    """
    closure = _closure(manifest, _targets(manifest, options.targets))
    if not closure.edges:
        raise NinjaFileError(_main_file(manifest), None, "the targets need no command (only phony or generator edges)")
    have = frozenset(available)
    folders = frozenset(p[:i] for p in have for i in range(len(p)) if p[i] == "/")
    ids = {i: _task_id(manifest.edges[i], paths) for i in closure.edges}
    tasks = [_task(manifest, i, paths, closure, ids, have, folders) for i in closure.edges]
    for i, task in zip(closure.edges, tasks, strict=True):
        seconds = options.estimates.get(manifest.edges[i].outputs[0])
        if seconds is not None:
            task["estimate"] = seconds
    graph: dict[str, Any] = {"id": options.graph_id, **({"source": mounts} if mounts else {})}
    if options.title:
        graph["title"] = options.title
    if any(f"@{UNDECLARED}" in t["inputs"] for t in tasks):
        explicit = {paths.workspace_path(p) for i in closure.edges for p in manifest.edges[i].inputs}
        graph["filesets"] = {UNDECLARED: sorted(have - explicit)}
    return {"graph": graph, "tasks": tasks}


def _main_file(manifest: Manifest) -> str:
    return manifest.edges[0].file if manifest.edges else "build.ninja"


def _targets(manifest: Manifest, wanted: tuple[str, ...]) -> list[str]:
    if wanted:
        targets = [canonical(t) for t in wanted]
        for t in targets:
            if t not in manifest.producer:
                near = difflib.get_close_matches(t, sorted(manifest.producer), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
                raise NinjaFileError(_main_file(manifest), None, f"unknown target {t!r}{hint}")
        return targets
    if manifest.defaults:
        return list(manifest.defaults)
    read = {p for e in manifest.edges for p in (*e.inputs, *e.implicit, *e.order_only)}
    return [p for e in manifest.edges if not e.generator for p in e.outputs if p not in read]


def _closure(manifest: Manifest, targets: Iterable[str]) -> _Closure:
    """Every non-phony, non-generator edge the targets need, and each one's direct edge dependencies."""
    edges, producer = manifest.edges, manifest.producer
    seen: set[int] = set()
    resolved: dict[int, frozenset[int]] = {}

    def behind(path: str, trail: tuple[int, ...]) -> frozenset[int]:
        """The real edges a path stands for: its producer, or through a phony what the phony needs."""
        i = producer.get(path)
        if i is None or edges[i].generator:
            return frozenset()
        if not edges[i].phony:
            return frozenset({i})
        if i in resolved:
            return resolved[i]
        if i in trail:
            raise _cycle(manifest, [*trail[trail.index(i) :], i])
        e = edges[i]
        found = frozenset().union(*(behind(p, (*trail, i)) for p in (*e.inputs, *e.implicit, *e.order_only)))
        resolved[i] = found
        return found

    closure = _Closure()
    stack = sorted(set().union(*(behind(t, ()) for t in targets)), reverse=True)
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        e = edges[i]
        deps = set().union(*(behind(p, ()) for p in (*e.inputs, *e.implicit, *e.order_only)))
        if i in deps:
            raise _cycle(manifest, [i, i])
        closure.deps[i] = deps
        stack += sorted(deps | set().union(*(behind(p, ()) for p in e.validations)), reverse=True)
    closure.edges = sorted(seen)
    return closure


def _cycle(manifest: Manifest, chain: list[int]) -> NinjaFileError:
    e = manifest.edges[chain[0]]
    names = " -> ".join(manifest.edges[i].outputs[0] for i in chain)
    return NinjaFileError(e.file, e.line, f"dependency cycle: {names}")


def _task_id(e: Edge, paths: PathMap) -> str:
    first = e.outputs[0]
    if not first.startswith("/"):
        return first
    return paths.workspace_path(first) or first


def _task(
    manifest: Manifest,
    i: int,
    paths: PathMap,
    closure: _Closure,
    ids: dict[int, str],
    have: frozenset[str],
    folders: frozenset[str],
) -> dict[str, Any]:
    e = manifest.edges[i]
    if e.variables.get("dyndep"):
        raise NinjaFileError(e.file, e.line, f"{e.outputs[0]!r} uses a dyndep file, known only while building")
    outputs = list(dict.fromkeys(_output(e, p, paths) for p in e.all_outputs()))  # CMake names some twice
    inputs: list[str] = []
    for p in (*e.inputs, *e.implicit):
        ws = paths.workspace_path(p)
        built = manifest.producer.get(p)
        marker = built is not None and manifest.edges[built].marks_a_file
        if ws is None or ws in folders or (built is not None and manifest.edges[built].phony and not marker):
            continue  # a system file, a folder, or an alias whose edges are dependencies already
        if marker and ws not in have:
            continue  # `build f: phony` with nothing behind it: Ninja does not need f to exist
        if built is None and ws not in have:
            needed = f"{p!r}, needed by {e.outputs[0]!r}, is missing and no edge builds it"
            raise NinjaFileError(e.file, e.line, needed)
        inputs.append(ws)
    if e.variables.get("depfile") or e.variables.get("deps"):
        inputs.append(f"@{UNDECLARED}")
    task: dict[str, Any] = {
        "id": ids[i],
        "command": _command(e, paths, outputs),
        "type": e.rule,
        "depends_on": sorted({ids[d] for d in closure.deps[i]}),
        "inputs": list(dict.fromkeys(inputs)),
        "outputs": outputs,
    }
    description = e.variables.get("description")
    if description:
        task["title"] = _readable(description, paths)
    return task


def _output(e: Edge, p: str, paths: PathMap) -> str:
    ws = paths.workspace_path(p)
    if ws is None:
        raise NinjaFileError(e.file, e.line, f"output {p!r} is outside the build and source folders")
    return ws


def _readable(text: str, paths: PathMap) -> str:
    for folder, at in paths.folders():
        text = text.replace(folder.rstrip("/") + "/", f"{at}/" if at else "").replace(folder, at or ".")
    return text


def _command(e: Edge, paths: PathMap, outputs: list[str]) -> str:
    steps: list[str] = []
    dirs = sorted({o.rsplit("/", 1)[0] for o in outputs if "/" in o})
    if dirs:
        steps.append("mkdir -p " + " ".join(map(shell_escape, dirs)))
    steps.append("cd " + shell_escape(paths.build_at))
    rspfile = e.variables.get("rspfile")
    if rspfile:
        content = paths.shell_word(e.variables.get("rspfile_content", ""))
        steps.append(f"printf '%s' {content} > {shell_escape(rspfile)}")
    # The command itself after a `;`, so that its own `||`, `;` or `#` act as under Ninja's `sh -c`.
    return " && ".join(steps) + " || exit 1; " + paths.command(e.variables.get("command", ""))


__all__ = ["ImportOptions", "build_mounts", "climb_of", "graph_document", "manifest_paths"]

"""WfCommons WfFormat (schema 1.4 to 1.6) into a niyantra graph document.

WfFormat is the standard format of workflow research (https://wfcommons.org). A 1.5/1.6
instance lists tasks in ``workflow.specification.tasks`` (id, name, parents) and their
measured runtimes in ``workflow.execution.tasks[].runtimeInSeconds``; a 1.4 instance lists
both in ``workflow.tasks``. The task's name (its program, e.g. ``blastall``) becomes the task
type the system learns durations for. Each task gets a command from a template, so that an
instance can really run: by default it sleeps for the recorded runtime times ``scale``.

The result is a plain document that goes through the same validation as a TOML file.
`wf_output_sizes` reads what the document does not carry: each task's output files and their
sizes (``specification.files[].sizeInBytes``; 1.4: ``files[]`` with ``link: output`` and
``size``), which `niyantra simulate --bandwidth` turns into transfers.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from orchestrator.graphs.problem import Problem
from schemas.ids import id_problem

SUPPORTED_VERSIONS = ("1.4", "1.5", "1.6")
DEFAULT_TEMPLATE = "sleep {seconds:.3f}"
TEMPLATE_FIELDS = {"id": "t", "name": "n", "type": "n", "runtime": 1.0, "seconds": 1.0, "cores": 1}
_SERIAL = re.compile(r"_[0-9]+$")


@dataclass(frozen=True)
class WfOptions:
    """How a WfFormat instance becomes runnable: the command template and the time scale.

    Template fields: ``{id}``, ``{name}``, ``{type}``, ``{runtime}`` (recorded seconds),
    ``{seconds}`` (runtime × scale) and ``{cores}``. The estimate is ``runtime × scale`` too,
    so a scaled run's predictions match what it does.
    """

    command_template: str = DEFAULT_TEMPLATE
    scale: float = 1.0
    graph_id: str | None = None


def is_wfformat(doc: Any) -> bool:
    """Tell whether a parsed JSON document is a WfFormat instance."""
    return isinstance(doc, dict) and isinstance(doc.get("workflow"), dict)


def template_problems(file: str, options: WfOptions) -> list[Problem]:
    """Problems with the command template or the scale (checked before any task)."""
    problems: list[Problem] = []
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(options.command_template) if f is not None]
        unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
        if unknown:
            raise KeyError(unknown[0])
        options.command_template.format(**TEMPLATE_FIELDS)
    except (KeyError, ValueError, IndexError) as e:
        known = ", ".join("{" + k + "}" for k in TEMPLATE_FIELDS)
        problems.append(Problem(file, None, "command_template", f"cannot use it ({e}); fields are {known}"))
    if not options.scale > 0:
        problems.append(Problem(file, None, "scale", f"must be greater than 0, got {options.scale!r}"))
    return problems


def _graph_id(doc: dict[str, Any], file: str, options: WfOptions) -> str:
    if options.graph_id:
        return options.graph_id
    name = doc.get("name")
    if id_problem(name) is None:
        return str(name)
    stem = file.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem if id_problem(stem) is None else "wfcommons"


def _runtimes(workflow: dict[str, Any]) -> dict[str, float]:
    execution = workflow.get("execution")
    rows = execution.get("tasks", []) if isinstance(execution, dict) else workflow.get("tasks", [])
    out: dict[str, float] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("runtimeInSeconds"), int | float):
            tid = row.get("id", row.get("name"))
            if isinstance(tid, str):
                out[tid] = float(row["runtimeInSeconds"])
    return out


def _cores(workflow: dict[str, Any]) -> dict[str, int]:
    execution = workflow.get("execution")
    rows = execution.get("tasks", []) if isinstance(execution, dict) else workflow.get("tasks", [])
    return {
        r["id"]: int(r["coreCount"])
        for r in (rows if isinstance(rows, list) else [])
        if isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("coreCount"), int)
    }


def _task_type(raw: dict[str, Any], tid: str) -> str:
    for key in ("category", "name"):
        v = raw.get(key)
        if isinstance(v, str) and v and v != tid:
            return v
    return _SERIAL.sub("", tid)


def wf_document(
    file: str, doc: dict[str, Any], options: WfOptions | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The niyantra graph document of a WfFormat instance, and the problems found on the way."""
    options = options or WfOptions()
    problems = template_problems(file, options)
    version = str(doc.get("schemaVersion", ""))
    if version not in SUPPORTED_VERSIONS:
        problems.append(
            Problem(file, None, "schemaVersion", f"{version!r} is not supported; use {', '.join(SUPPORTED_VERSIONS)}")
        )
    workflow = doc["workflow"]
    spec = workflow.get("specification")
    rows = spec.get("tasks") if isinstance(spec, dict) else workflow.get("tasks")
    if not isinstance(rows, list):
        where = "workflow.specification.tasks" if isinstance(spec, dict) else "workflow.tasks"
        problems.append(Problem(file, None, where, "is missing or not a list"))
        return {}, problems
    runtimes, cores = _runtimes(workflow), _cores(workflow)
    tasks: list[dict[str, Any]] = []
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            problems.append(Problem(file, None, None, f"workflow task #{i + 1} is not an object"))
            continue
        tid = raw.get("id", raw.get("name"))
        if not isinstance(tid, str):
            problems.append(Problem(file, f"#{i + 1}", "id", "is missing"))
            continue
        runtime = runtimes.get(tid)
        seconds = runtime * options.scale if runtime is not None else 0.0
        kind = _task_type(raw, tid)
        task: dict[str, Any] = {"id": tid, "title": str(raw.get("name", tid)), "type": kind}
        task["depends_on"] = raw.get("parents", [])
        if runtime is not None:
            task["estimate"] = seconds
        if not problems:
            fields = {"id": tid, "name": task["title"], "type": kind, "runtime": runtime or 0.0}
            task["command"] = options.command_template.format(seconds=seconds, cores=cores.get(tid, 1), **fields)
        tasks.append(task)
    title = doc.get("description") if isinstance(doc.get("description"), str) else ""
    graph = {"id": _graph_id(doc, file, options), "title": str(doc.get("name", title))}
    return {"graph": graph, "tasks": tasks}, problems


def _sizes_14(rows: list[Any]) -> dict[str, tuple[tuple[str, int], ...]]:
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for raw in rows:
        tid = raw.get("id", raw.get("name")) if isinstance(raw, dict) else None
        files = raw.get("files") if isinstance(raw, dict) else None
        if isinstance(tid, str) and isinstance(files, list):
            out[tid] = tuple(
                (f["name"], int(f["size"]))
                for f in files
                if isinstance(f, dict)
                and f.get("link") == "output"
                and isinstance(f.get("name"), str)
                and isinstance(f.get("size"), int | float)
            )
    return out


def wf_output_sizes(doc: dict[str, Any]) -> dict[str, tuple[tuple[str, int], ...]]:
    """Each task's output files with their sizes in bytes (file id, size), in the file's order;
    a file without a size is left out. Empty for a document that names no files."""
    workflow = doc.get("workflow") if isinstance(doc, dict) else None
    if not isinstance(workflow, dict):
        return {}
    spec = workflow.get("specification")
    if not isinstance(spec, dict):
        rows = workflow.get("tasks")
        return _sizes_14(rows) if isinstance(rows, list) else {}
    files = spec.get("files")
    size = {
        f["id"]: int(f["sizeInBytes"])
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict) and isinstance(f.get("id"), str) and isinstance(f.get("sizeInBytes"), int | float)
    }
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for raw in spec.get("tasks") or []:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and isinstance(raw.get("outputFiles"), list):
            out[raw["id"]] = tuple((f, size[f]) for f in raw["outputFiles"] if isinstance(f, str) and f in size)
    return out

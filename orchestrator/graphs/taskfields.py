"""The fields of a graph file's task table: durations (`parse_duration`), each field's converter
(`TASK_FIELDS`), the graph's task defaults and the check of one task into a `TaskSpec`
(`parse_task`), shared by the graph validation and the rules' checks.

Pure; may import the graph file's problem type, its input/output field checks and the events.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from orchestrator.graphs.iocheck import inputs_field, outputs_field
from orchestrator.graphs.problem import Problem
from schemas.ids import id_problem
from schemas.records import TaskSpec

MAX_ATTEMPTS_LIMIT = 100

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


def type_name(v: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return f"{names.get(type(v), type(v).__name__)} {v!r}" if not isinstance(v, list | dict) else names[type(v)]


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {type_name(v)}")
    return v


def _command(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string" + ("" if isinstance(v, str) else f", got {type_name(v)}"))
    return v


def _int_range(lo: int, hi: int) -> Convert:
    def convert(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"must be an integer from {lo} to {hi}, got {type_name(v)}")
        return v

    return convert


def _priority(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"must be an integer, got {type_name(v)}")
    return v


def _duration(v: Any) -> float:
    return parse_duration(v)


def _positive_duration(v: Any) -> float:
    s = parse_duration(v)
    if s <= 0:
        raise ValueError(f"{v!r} must be longer than 0s")
    return s


def id_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or (v and not set(map(type, v)) <= _STR):
        raise ValueError(f"must be a list of task ids, got {type_name(v)}")
    return tuple(v)


def _env_names(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(d, str) for d in v):
        raise ValueError(f"must be a list of environment variable names, got {type_name(v)}")
    bad = [n for n in v if not _ENV_NAME.match(n)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an environment variable name (letters, digits, _)")
    return tuple(dict.fromkeys(v))


def _scope(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(d, str) and d for d in v):
        raise ValueError(f"must be a list of glob paths, got {type_name(v)}")
    for g in v:
        if g.startswith("/") or ".." in g.split("/"):
            raise ValueError(f"{g!r} must be relative to the workspace and stay inside it (no leading / or ..)")
    return tuple(v)


def _labels(v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise ValueError(f"must be a table of key = value, got {type_name(v)}")
    out: dict[str, str] = {}
    for k, val in v.items():
        if isinstance(val, bool):
            val = str(val).lower()
        elif isinstance(val, int | float | str):
            val = str(val)
        else:
            raise ValueError(f"label {k!r} must be a string or number, got {type_name(val)}")
        out[str(k)] = val
    return out


# field name in the file -> (name in TaskSpec, converter)
TASK_FIELDS: dict[str, tuple[str, Convert]] = {
    "id": ("id", _string),
    "title": ("title", _string),
    "command": ("command", _command),
    "depends_on": ("depends_on", id_list),
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


def unknown_keys(where: Problem, keys: object, known: tuple[str, ...] | dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for k in keys:  # type: ignore[attr-defined]
        if k not in known:
            near = difflib.get_close_matches(str(k), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(known)}"
            out.append(where.at(field=str(k), message=f"unknown key{hint}"))
    return out


def parse_defaults(file: str, graph: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    raw = graph.get("defaults", {})
    here = Problem(file, None, "defaults", "")
    if not isinstance(raw, dict):
        return {}, [here.at(message=f"must be a table, got {type_name(raw)}")]
    problems = unknown_keys(Problem(file, None, None, "", scope="graph.defaults"), raw, DEFAULTABLE)
    out: dict[str, Any] = {}
    for key in DEFAULTABLE:
        if key in raw:
            name, convert = TASK_FIELDS[key]
            try:
                out[name] = convert(raw[key])
            except ValueError as e:
                problems.append(Problem(file, None, key, str(e), scope="graph.defaults"))
    return out, problems


def parse_task(file: str, index: int, raw: Any, defaults: dict[str, Any]) -> tuple[TaskSpec | None, list[Problem]]:
    if type(raw) is not dict:
        return None, [Problem(file, None, None, f"tasks[{index}] must be a table, got {type_name(raw)}")]
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
                problems.append(Problem(file, who, key, f"must be true or false, got {type_name(value)}"))
            continue
        if spec is None:
            problems += unknown_keys(Problem(file, who, None, ""), (key,), TASK_FIELDS)
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

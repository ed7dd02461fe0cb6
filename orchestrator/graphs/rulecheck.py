"""Validation of a graph file's follow-up rules (``[[rules]]``) and its ``generation_limit``.

Pure, like `graphcheck` (which calls it): every problem names the file, the rule
(``rules[i]``) and the field. A rule::

    [[rules]]
    name = "integration-tests"            # a subject-safe id, unique in the file
    on = ["success"]                      # success | partial | failure | any (default success)
    when = { type = "schema" }            # type, id (a glob), labels, depends_on
    unless = { type = "integration", depends_on = "{task}" }   # skip when such a task exists
    before = ["deploy"]                   # these also wait for the generated task, if not released yet
    [rules.task]                          # a task template: every task field
    id = "{task}-it"                      # default "{task}-{rule}"
    command = "make it"
    depends_on = ["{task}"]               # default: the triggering task

Placeholders in the template's id, title, command and depends_on, and in selectors'
``depends_on``: ``{task}`` (triggering task id), ``{title}``, ``{type}``, ``{outcome}``,
``{graph}``, ``{rule}`` and ``{n}`` (the graph's generated-task counter, from 1). An unknown
placeholder is an error except in the command, where braces stay for the shell (``${HOME}``).
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.graphs.problem import Problem
from orchestrator.graphs.taskfields import parse_task, type_name, unknown_keys
from schemas.records import FollowUpRule, TaskSelector
from schemas.subjects import is_safe_id

PLACEHOLDERS = ("task", "title", "type", "outcome", "graph", "rule", "n")
OUTCOMES = ("success", "partial", "failure")
RULE_FIELDS = ("name", "when", "on", "unless", "task", "before")
SELECTOR_FIELDS = ("type", "id", "labels", "depends_on")
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
_NAME = re.compile(r"\{(\w*)\}")


def placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders in ``text``, in order."""
    return _NAME.findall(text)


def expand(text: str, values: dict[str, str]) -> str:
    """``text`` with each known placeholder replaced; other braces are kept as written."""
    return _NAME.sub(lambda m: values.get(m.group(1), m.group(0)), text)


SAMPLE = {"task": "T", "title": "t", "type": "x", "outcome": "success", "graph": "g", "rule": "r", "n": "1"}


def check_rules(
    file: str, raw: Any, raw_limit: Any, defaults: dict[str, Any], task_ids: set[str]
) -> tuple[tuple[FollowUpRule, ...], int, list[Problem]]:
    """The rules and the generation limit of a document, and every problem found."""
    problems: list[Problem] = []
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if isinstance(raw_limit, bool) or not isinstance(raw_limit, int) or not 0 <= raw_limit <= MAX_LIMIT:
            msg = f"must be an integer from 0 to {MAX_LIMIT}, got {type_name(raw_limit)}"
            problems.append(Problem(file, None, "generation_limit", msg, scope="graph"))
        else:
            limit = raw_limit
    if raw is None:
        return (), limit, problems
    if not isinstance(raw, list):
        problems.append(Problem(file, None, "rules", f"must be an array of tables ([[rules]]), got {type_name(raw)}"))
        return (), limit, problems
    rules: list[FollowUpRule] = []
    names: set[str] = set()
    for i, r in enumerate(raw):
        rule, more = _rule(file, i, r, defaults, task_ids)
        problems += more
        if rule is not None:
            if rule.name in names:
                problems.append(Problem(file, None, f"rules[{i}].name", f"duplicates an earlier rule {rule.name!r}"))
            names.add(rule.name)
            rules.append(rule)
    return tuple(rules), limit, problems


def _rule(
    file: str, i: int, raw: Any, defaults: dict[str, Any], task_ids: set[str]
) -> tuple[FollowUpRule | None, list[Problem]]:
    at = f"rules[{i}]"
    if not isinstance(raw, dict):
        return None, [Problem(file, None, at, f"must be a table, got {type_name(raw)}")]
    problems = [p.at(field=f"{at}.{p.field}") for p in unknown_keys(Problem(file, None, None, ""), raw, RULE_FIELDS)]
    name = raw.get("name")
    if not isinstance(name, str) or not is_safe_id(name):
        what = "is missing" if name is None else f"must be 1-128 characters from A-Z a-z 0-9 _ -, got {name!r}"
        problems.append(Problem(file, None, f"{at}.name", what))
        name = "r"
    on = _outcomes(file, at, raw.get("on", ["success"]), problems)
    when = _selector(file, f"{at}.when", raw.get("when", {}), problems)
    unless = _selector(file, f"{at}.unless", raw["unless"], problems) if "unless" in raw else None
    task = _template(file, at, raw.get("task"), name, defaults, task_ids, problems)
    before = _before(file, at, raw.get("before", []), task_ids, problems)
    if problems or task is None or when is None:
        return None, problems
    return FollowUpRule(name=name, when=when, on=on, unless=unless, task=task, before=before), problems


def _before(file: str, at: str, v: Any, task_ids: set[str], problems: list[Problem]) -> tuple[str, ...]:
    """Tasks that also wait for the generated one: ids of the graph (or patterns of them)."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(b, str) for b in v):
        problems.append(Problem(file, None, f"{at}.before", f"must be a list of task ids, got {type_name(v)}"))
        return ()
    for b in v:
        _known_placeholders(file, f"{at}.before", b, problems)
        if not placeholders(b) and b not in task_ids:
            problems.append(Problem(file, None, f"{at}.before", f"names unknown task {b!r}"))
    return tuple(dict.fromkeys(v))


def _outcomes(file: str, at: str, v: Any, problems: list[Problem]) -> tuple[str, ...]:
    vals = [v] if isinstance(v, str) else v
    if not isinstance(vals, list) or not vals or not all(isinstance(o, str) for o in vals):
        problems.append(Problem(file, None, f"{at}.on", f"must be a list of outcomes, got {type_name(v)}"))
        return ()
    out: set[str] = set()
    for o in vals:
        if o == "any":
            out.update(OUTCOMES)
        elif o in OUTCOMES:
            out.add(o)
        else:
            problems.append(
                Problem(file, None, f"{at}.on", f"unknown outcome {o!r}; use success, partial, failure or any")
            )
    return tuple(o for o in OUTCOMES if o in out)


def _selector(file: str, at: str, raw: Any, problems: list[Problem]) -> TaskSelector | None:
    if not isinstance(raw, dict):
        problems.append(
            Problem(file, None, at, f"must be a table (type, id, labels, depends_on), got {type_name(raw)}")
        )
        return None
    problems += [
        p.at(field=f"{at}.{p.field}") for p in unknown_keys(Problem(file, None, None, ""), raw, SELECTOR_FIELDS)
    ]
    fields: dict[str, Any] = {}
    for key in ("type", "id", "depends_on"):
        if key in raw:
            if not isinstance(raw[key], str):
                problems.append(Problem(file, None, f"{at}.{key}", f"must be a string, got {type_name(raw[key])}"))
            else:
                fields[key] = raw[key]
                _known_placeholders(file, f"{at}.{key}", raw[key], problems)
    labels = raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append(
            Problem(file, None, f"{at}.labels", f"must be a table of key = string, got {type_name(labels)}")
        )
    else:
        fields["labels"] = {str(k): v for k, v in labels.items()}
    return TaskSelector(**fields)


def _known_placeholders(file: str, field: str, text: str, problems: list[Problem]) -> None:
    for name in placeholders(text):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            problems.append(Problem(file, None, field, f"unknown placeholder {{{name}}}; known: {known}"))


def _template(
    file: str, at: str, raw: Any, name: str, defaults: dict[str, Any], task_ids: set[str], problems: list[Problem]
) -> Any:
    """The task template as a `TaskSpec` whose id, title, command and depends_on are patterns."""
    where = f"{at}.task"
    if not isinstance(raw, dict):
        what = "is missing: add a [rules.task] table" if raw is None else f"must be a table, got {type_name(raw)}"
        problems.append(Problem(file, None, where, what))
        return None
    pattern = raw.get("id", "{task}-{rule}")
    deps = raw.get("depends_on", ["{task}"])
    sample = {**SAMPLE, "rule": name}
    trial = dict(raw, id=expand(pattern, sample) if isinstance(pattern, str) else pattern)
    trial["depends_on"] = (
        [expand(d, sample) if isinstance(d, str) else d for d in deps] if isinstance(deps, list) else deps
    )
    spec, found = parse_task(file, 0, trial, defaults)
    problems += [p.at(task=None, field=f"{where}.{p.field or ''}".rstrip(".")) for p in found]
    for key, text in (("id", pattern), ("title", raw.get("title", ""))):
        if isinstance(text, str):
            _known_placeholders(file, f"{where}.{key}", text, problems)
    for d in deps if isinstance(deps, list) else []:
        if isinstance(d, str):
            _known_placeholders(file, f"{where}.depends_on", d, problems)
            if not placeholders(d) and d not in task_ids:
                problems.append(Problem(file, None, f"{where}.depends_on", f"names unknown task {d!r}"))
    if spec is None:
        return None
    import msgspec

    return msgspec.structs.replace(spec, id=pattern, depends_on=tuple(deps), title=raw.get("title", ""))

"""Follow-up rules in a graph file: good ones are read into the spec, bad ones are named precisely.

Each problem names the file, the rule index and the field; every problem is reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import GraphFileError
from orchestrator.graphs.graphfile import build_graph


def doc(*rules: Any, **graph: Any) -> dict[str, Any]:
    return {
        "graph": {"id": "g", **graph},
        "tasks": [{"id": "a", "command": "true", "type": "schema"}, {"id": "b", "command": "true"}],
        "rules": list(rules),
    }


GOOD = {"name": "it", "when": {"type": "schema"}, "task": {"id": "{task}-it", "command": "make it"}}


def problems(d: dict[str, Any]) -> list[str]:
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", d)
    return [str(p) for p in info.value.problems]


def test_a_good_rule_is_read_with_its_defaults() -> None:
    spec = build_graph("f.toml", doc({**GOOD, "before": "b"}, generation_limit=5))
    [r] = spec.rules
    assert r.before == ("b",)
    assert (r.name, r.on, r.when.type, r.unless) == ("it", ("success",), "schema", None)
    assert (r.task.id, r.task.command, r.task.depends_on) == ("{task}-it", "make it", ("{task}",))
    assert spec.generation_limit == 5


def test_defaults_apply_to_templates_and_any_means_every_outcome() -> None:
    d = doc({**GOOD, "on": "any"})
    d["graph"]["defaults"] = {"max_attempts": 3}
    [r] = build_graph("f.toml", d).rules
    assert r.on == ("success", "partial", "failure") and r.task.max_attempts == 3


def test_a_graph_without_rules_keeps_limit_100_and_no_rules() -> None:
    d = doc()
    del d["rules"]
    spec = build_graph("f.toml", d)
    assert (spec.rules, spec.generation_limit) == ((), 100)


@pytest.mark.parametrize(
    ("rule", "graph", "expected"),
    [
        ({**GOOD, "nmae": "x"}, {}, "f.toml: field 'rules[0].nmae': unknown key; did you mean 'name'?"),
        ({k: v for k, v in GOOD.items() if k != "name"}, {}, "f.toml: field 'rules[0].name': is missing"),
        ({**GOOD, "name": "a b"}, {}, "f.toml: field 'rules[0].name': must be 1-128 characters"),
        ({**GOOD, "on": ["sucess"]}, {}, "f.toml: field 'rules[0].on': unknown outcome 'sucess'"),
        ({**GOOD, "on": 3}, {}, "f.toml: field 'rules[0].on': must be a list of outcomes"),
        ({**GOOD, "when": {"tpye": "x"}}, {}, "f.toml: field 'rules[0].when.tpye': unknown key; did you mean 'type'?"),
        ({**GOOD, "when": "schema"}, {}, "f.toml: field 'rules[0].when': must be a table"),
        ({**GOOD, "unless": {"type": 3}}, {}, "f.toml: field 'rules[0].unless.type': must be a string"),
        ({k: v for k, v in GOOD.items() if k != "task"}, {}, "f.toml: field 'rules[0].task': is missing"),
        ({**GOOD, "task": {"command": ""}}, {}, "f.toml: field 'rules[0].task.command': must be a non-empty string"),
        ({**GOOD, "task": {"command": "x", "id": "{tsk}-it"}}, {}, "rules[0].task.id': unknown placeholder {tsk}"),
        ({**GOOD, "task": {"command": "x", "id": "{task}\x07it"}}, {}, "rules[0].task.id': contains the control character"),
        ({**GOOD, "task": {"command": "x", "depends_on": ["zz"]}}, {}, "task.depends_on': names unknown task 'zz'"),
        ({**GOOD, "task": {"command": "x", "tier": 5}}, {}, "field 'rules[0].task.tier': must be an integer from 1"),
        ({**GOOD, "task": {"command": "x", "colour": 1}}, {}, "field 'rules[0].task.colour': unknown key"),
        ({**GOOD, "before": ["zz"]}, {}, "f.toml: field 'rules[0].before': names unknown task 'zz'"),
        ({**GOOD, "before": [1]}, {}, "f.toml: field 'rules[0].before': must be a list of task ids"),
        ({**GOOD, "before": ["{bad}"]}, {}, "field 'rules[0].before': unknown placeholder {bad}"),
        (GOOD, {"generation_limit": -1}, "f.toml: [graph]: field 'generation_limit': must be an integer from 0"),
        (GOOD, {"generation_limit": True}, "field 'generation_limit': must be an integer from 0 to 100000"),
    ],
)
def test_bad_rules_are_named_by_file_rule_and_field(rule: Any, graph: dict[str, Any], expected: str) -> None:
    found = problems(doc(rule, **graph))
    assert any(expected in p for p in found), found


def test_duplicate_rule_names_and_a_non_table_rule() -> None:
    found = problems(doc(GOOD, GOOD, "oops"))
    assert any("rules[1].name': duplicates an earlier rule 'it'" in p for p in found), found
    assert any("rules[2]': must be a table" in p for p in found), found


def test_rules_must_be_an_array_of_tables() -> None:
    d = doc()
    d["rules"] = {"name": "x"}
    assert any("field 'rules': must be an array of tables" in p for p in problems(d))


def test_the_command_keeps_shell_braces() -> None:
    rule = {**GOOD, "task": {"command": "echo ${HOME} {task}"}}
    [r] = build_graph("f.toml", doc(rule)).rules
    assert r.task.command == "echo ${HOME} {task}"


def test_the_python_api_takes_rules_and_validates_them_like_a_file() -> None:
    from orchestrator.writeside.api import Graph

    g = Graph("py", generation_limit=3)
    base = g.task("a", "true", type="schema")
    g.rule("it", when={"type": "schema"}, before=[], task={"id": "{task}-it", "command": "it"})
    spec = g.build()
    assert [r.name for r in spec.rules] == ["it"] and spec.generation_limit == 3 and base == "a"
    g.rule("bad", on=["never"], task={"command": "x"})
    with pytest.raises(GraphFileError) as info:
        g.build()
    assert any("rules[1].on" in str(p) and "unknown outcome 'never'" in str(p) for p in info.value.problems)

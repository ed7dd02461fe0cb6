"""Graph files: every sensible form is taken, every broken one is rejected precisely."""

from __future__ import annotations

import pytest

from orchestrator.errors import GraphFileError
from orchestrator.graphfile import build_graph, find_cycle, load_graph, parse_duration


def doc(*tasks: dict, gid: str = "g") -> dict:
    return {"graph": {"id": gid}, "tasks": list(tasks)}


def task(tid: str, *deps: str, **extra) -> dict:
    return {"id": tid, "command": "true", "depends_on": list(deps), **extra}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("18m", 1080.0),
        ("1h30m", 5400.0),
        ("1h", 3600.0),
        ("2m5s", 125.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "5d", -1, True, "m"])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ("b",), "b": ("a",)}, ["a", "b", "a"]),
        ({"a": ("b",), "b": ("c",), "c": ("a",)}, ["a", "b", "c", "a"]),
        ({"a": (), "b": ("a",), "c": ("b", "a")}, None),
        ({"x": ("y",), "y": ("z",), "z": ("y",)}, ["y", "z", "y"]),
    ],
)
def test_find_cycle(deps, cycle):
    assert find_cycle(deps) == cycle


def test_valid_graph_keeps_order_and_fields():
    spec = build_graph("f.toml", doc(task("A"), task("B", "A", estimate="2m", timeout=30, tier=2, title="b")))
    assert [t.id for t in spec.tasks] == ["A", "B"]
    b = spec.tasks[1]
    assert (b.depends_on, b.estimate_s, b.timeout_s, b.tier, b.title) == (
        ("A",),
        120.0,
        30.0,
        2,
        "b",
    )


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        (
            (task("A", "B"), task("B", "A")),
            "f.toml: task 'A': field 'depends_on' forms a cycle: A -> B -> A",
        ),
        ((task("A", "Z"),), "f.toml: task 'A': field 'depends_on' names unknown task 'Z'"),
        ((task("A"), task("A")), "f.toml: task 'A': field 'id' duplicates an earlier task"),
        ((task("A.b"),), "f.toml: task 'A.b': field 'id' must be"),
        (({"id": "A"},), "f.toml: task 'A': field 'command' is missing or empty"),
        ((task("A", "A"),), "f.toml: task 'A': field 'depends_on' names the task itself"),
        ((task("A", tier=4),), "f.toml: task 'A': field 'tier' must be an integer from 1 to 3"),
        ((task("A", timeout="later"),), "f.toml: task 'A': field 'timeout':"),
    ],
)
def test_each_problem_names_file_task_and_field(tasks, expected):
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", doc(*tasks))
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_not_only_the_first():
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", doc(task("A", "Z"), task("B", "C"), task("C", "B"), {"id": "D"}))
    assert len(info.value.problems) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[graph\nid=", "not valid TOML"),
        ("[[tasks]]\nid='A'\ncommand='true'\n", "missing [graph] table"),
        ("[graph]\nid='g'\n", "no [[tasks]] defined"),
        ("[graph]\nid='a b'\n[[tasks]]\nid='A'\ncommand='x'\n", "graph field 'id' must be"),
    ],
)
def test_file_level_problems(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(GraphFileError) as info:
        load_graph(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(GraphFileError, match="cannot read"):
        load_graph(tmp_path / "nope.toml")


def test_the_demo_graph_is_valid():
    spec = load_graph("examples/demo.toml")
    assert len(spec.tasks) == 14
    deps = {t.id: set(t.depends_on) for t in spec.tasks}
    assert deps["T-002"] == deps["T-003"] == deps["T-005"] == {"T-001"}
    assert deps["T-004"] == {"T-002", "T-003"} and deps["T-006"] == {"T-004", "T-005"}

"""Graph files: every sensible form is taken, every broken one is rejected precisely.

Each problem names the file, the task id and the field; every problem is reported, not only
the first.
"""

from __future__ import annotations

import gzip
import json

import pytest

from orchestrator.errors import GraphFileError
from orchestrator.graphs.graphfile import build_graph, find_cycle, load_graph, parse_duration
from orchestrator.graphs.shape import graph_shape
from orchestrator.graphs.validation import Limits


def doc(*tasks: dict, gid: str = "g", **graph) -> dict:
    return {"graph": {"id": gid, **graph}, "tasks": list(tasks)}


def task(tid: str, *deps: str, **extra) -> dict:
    return {"id": tid, "command": "true", "depends_on": list(deps), **extra}


def problems_of(d: dict, limits: Limits | None = None) -> list[str]:
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", d, limits)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("18m", 1080.0),
        ("1h30m", 5400.0),
        ("1h", 3600.0),
        ("2m5s", 125.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "5y", -1, "-5s", True, "m", "1m1h", [1], float("nan")])
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
        ({"a": ("a",)}, ["a", "a"]),
    ],
)
def test_find_cycle(deps, cycle):
    assert find_cycle(deps) == cycle


def test_every_field_of_a_task_is_read():
    t = task(
        "B",
        "A",
        title="b",
        type="compile",
        estimate="2m",
        timeout="1h30m",
        max_attempts=3,
        tier=2,
        preflight="make -n",
        scope=["src/**", "build/*.o"],
        labels={"os": "linux", "gpu": True, "cores": 8},
        env=["CC", "CFLAGS"],
        priority=5,
    )
    b = build_graph("f.toml", doc(task("A"), t)).tasks[1]
    assert (b.depends_on, b.title, b.type, b.estimate_s, b.timeout_s, b.max_attempts, b.tier) == (
        ("A",),
        "b",
        "compile",
        120.0,
        5400.0,
        3,
        2,
    )
    assert (b.preflight, b.scope, b.labels, b.env, b.priority) == (
        "make -n",
        ("src/**", "build/*.o"),
        {"os": "linux", "gpu": "true", "cores": "8"},
        ("CC", "CFLAGS"),
        5,
    )


def test_graph_defaults_apply_and_tasks_override_or_merge():
    defaults = {"type": "test", "timeout": "5m", "labels": {"os": "linux"}, "env": ["HOME_DIR"], "max_attempts": 2}
    d = doc(task("A"), task("B", timeout=10, labels={"arch": "arm"}, env=["CC"]), defaults=defaults)
    a, b = build_graph("f.toml", d).tasks
    assert (a.type, a.timeout_s, a.labels, a.env, a.max_attempts) == ("test", 300.0, {"os": "linux"}, ("HOME_DIR",), 2)
    assert (b.timeout_s, b.labels, b.env) == (10.0, {"os": "linux", "arch": "arm"}, ("HOME_DIR", "CC"))


BAD_TASKS = [
    ([task("A", "B"), task("B", "A")], "f.toml: task 'A': field 'depends_on': forms a cycle: A -> B -> A"),
    ([task("A", "Z")], "f.toml: task 'A': field 'depends_on': names unknown task 'Z'"),
    ([task("T-001"), task("B", "T-01")], "task 'B': field 'depends_on': names unknown task 'T-01'; did you mean"),
    ([task("A"), task("A")], "f.toml: task 'A': field 'id': duplicates an earlier task"),
    ([task("A\tb")], "f.toml: task 'A\\tb': field 'id': contains the control character '\\t' at position 1"),
    ([task("x" * 257)], "field 'id': is 257 characters long; at most 256"),
    ([task("")], "f.toml: task '#1': field 'id': is empty"),
    ([{"id": "A"}], "f.toml: task 'A': field 'command': is missing"),
    ([task("A", command="  ")], "f.toml: task 'A': field 'command': must be a non-empty string"),
    ([{"command": "true"}], "f.toml: task '#1': field 'id': is missing"),
    ([task("A", "A")], "f.toml: task 'A': field 'depends_on': names the task itself"),
    ([task("A", tier=4)], "f.toml: task 'A': field 'tier': must be an integer from 1 to 3, got integer 4"),
    ([task("A", tier="2")], "f.toml: task 'A': field 'tier': must be an integer from 1 to 3, got string '2'"),
    ([task("A", tier=2)], "f.toml: task 'A': field 'preflight': is required for a tier 2 task"),
    ([task("A", timeout="soon")], "f.toml: task 'A': field 'timeout': 'soon' is not a duration"),
    ([task("A", estimate=-5)], "f.toml: task 'A': field 'estimate': -5 is negative"),
    ([task("A", estimate="-5m")], "f.toml: task 'A': field 'estimate': '-5m' is negative"),
    ([task("A", timeout=0)], "f.toml: task 'A': field 'timeout': 0 must be longer than 0s"),
    ([task("A", max_attempts=0)], "f.toml: task 'A': field 'max_attempts': must be an integer from 1 to 100"),
    ([task("A", title=5)], "f.toml: task 'A': field 'title': must be a string, got integer 5"),
    ([task("A", depends_on=[1])], "f.toml: task 'A': field 'depends_on': must be a list of task ids"),
    ([task("A", env=["BAD-NAME"])], "f.toml: task 'A': field 'env': 'BAD-NAME' is not an environment variable"),
    ([task("A", scope=["/etc/*"])], "f.toml: task 'A': field 'scope': '/etc/*' must be relative"),
    ([task("A", scope=["../x"])], "f.toml: task 'A': field 'scope': '../x' must be relative"),
    ([task("A", labels=["os"])], "f.toml: task 'A': field 'labels': must be a table"),
    ([task("A", priority=1.5)], "f.toml: task 'A': field 'priority': must be an integer"),
    ([task("A", depend_on=["B"])], "f.toml: task 'A': field 'depend_on': unknown key; did you mean 'depends_on'?"),
    ([task("A", timout="5m")], "f.toml: task 'A': field 'timout': unknown key; did you mean 'timeout'?"),
    (["not a table"], "f.toml: tasks[0] must be a table"),
]


@pytest.mark.parametrize(("tasks", "message"), BAD_TASKS)
def test_each_problem_names_file_task_and_field(tasks, message):
    problems = problems_of(doc(*tasks))
    assert any(message in p for p in problems), problems


def test_every_problem_is_reported_not_only_the_first():
    problems = problems_of(doc(task("A", "Z"), task("B", "C"), task("C", "B"), {"id": "D"}, task("E", tier=9)))
    assert len(problems) == 4, problems
    assert any("'Z'" in p for p in problems)
    assert any("cycle: B -> C -> B" in p for p in problems)
    assert any("task 'D': field 'command'" in p for p in problems)
    assert any("task 'E': field 'tier'" in p for p in problems)


def test_a_broken_task_is_still_known_to_its_dependents():
    problems = problems_of(doc(task("A", tier=7), task("B", "A")))
    assert problems == ["f.toml: task 'A': field 'tier': must be an integer from 1 to 3, got integer 7"]


def test_every_independent_cycle_is_reported():
    problems = problems_of(doc(task("A", "B"), task("B", "A"), task("C", "D"), task("D", "E"), task("E", "C")))
    cycles = [p for p in problems if "cycle" in p]
    assert cycles == [
        "f.toml: task 'A': field 'depends_on': forms a cycle: A -> B -> A",
        "f.toml: task 'C': field 'depends_on': forms a cycle: C -> D -> E -> C",
    ]


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"tasks": [task("A")]}, "f.toml: field 'graph': is missing"),
        ({"graph": {"id": "g"}}, "f.toml: field 'tasks': no tasks"),
        (doc(task("A"), gid="a\nb"), "f.toml: [graph]: field 'id': contains the control character '\\n' at position 1"),
        (doc(task("A"), gid="g", titel="x"), "f.toml: [graph]: field 'titel': unknown key; did you mean 'title'?"),
        ({**doc(task("A")), "taks": []}, "f.toml: field 'taks': unknown key; did you mean 'tasks'?"),
        (doc(task("A"), defaults={"tier": 5}), "f.toml: [graph.defaults]: field 'tier': must be an integer"),
        (doc(task("A"), defaults={"command": "x"}), "f.toml: [graph.defaults]: field 'command': unknown key"),
    ],
)
def test_document_level_problems(d, message):
    problems = problems_of(d)
    assert any(message in p for p in problems), problems


def test_task_limit_is_an_option():
    problems = problems_of(doc(task("A"), task("B"), task("C")), Limits(max_tasks=2))
    assert problems == ["f.toml: field 'tasks': 3 tasks is over the limit of 2 (--max-tasks)"]
    assert len(build_graph("f.toml", doc(task("A"), task("B")), Limits(max_tasks=2)).tasks) == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[graph\nid=1", "bad.toml:1:7: not valid TOML"),
        ("bad.toml", "[graph]\nid = 'g'\n[[tasks]]\nid = 'A'\ncommand = \n", "bad.toml:5:11: not valid TOML"),
        ("bad.json", '{"graph": {"id": "g"},\n "tasks": [}', "bad.json:2:12: not valid JSON"),
    ],
)
def test_unparseable_files_name_line_and_column(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GraphFileError) as info:
        load_graph(path)
    (problem,) = info.value.problems
    assert message in str(problem).replace(str(tmp_path) + "/", ""), problem


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text("#" * 2000)
    with pytest.raises(GraphFileError, match="size 2,000 bytes is over the limit of 1,000 bytes"):
        load_graph(path, Limits(max_bytes=1000))


def test_gzip_bomb_is_refused_by_inflated_size(tmp_path):
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b" " * 5000))
    with pytest.raises(GraphFileError, match="inflated size"):
        load_graph(path, Limits(max_bytes=1000))


def test_missing_file(tmp_path):
    with pytest.raises(GraphFileError, match="cannot read"):
        load_graph(tmp_path / "nope.toml")


def test_the_same_graph_as_json_and_as_gzipped_json(tmp_path):
    d = doc(task("A", estimate="1m"), task("B", "A"), title="t")
    (tmp_path / "g.json").write_text(json.dumps(d))
    (tmp_path / "g.json.gz").write_bytes(gzip.compress(json.dumps(d).encode()))
    a, b = load_graph(tmp_path / "g.json"), load_graph(tmp_path / "g.json.gz")
    assert a.tasks == b.tasks == build_graph("x", d).tasks


def test_the_demo_graph_is_valid():
    spec = load_graph("examples/demo.toml")
    assert spec.id == "demo" and len(spec.tasks) == 13  # the 14th, T-005, is generated by its rule
    assert [r.name for r in spec.rules] == ["integration-tests"]


@pytest.mark.parametrize(
    ("deps", "estimates", "depth", "critical", "path"),
    [
        ({"a": ()}, {"a": 5.0}, 1, 5.0, ("a",)),
        ({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}, {"a": 1, "b": 10, "c": 2, "d": 1}, 3, 12.0, "abd"),
        ({"a": (), "b": (), "c": ("a", "b")}, {"a": None, "b": 4, "c": 1}, 2, 5.0, "bc"),
    ],
)
def test_shape_depth_and_critical_path(deps, estimates, depth, critical, path):
    shape = graph_shape(deps, estimates)
    assert (shape.depth, shape.critical_path_s, shape.critical_path) == (depth, critical, tuple(path))
    assert shape.edges == sum(len(d) for d in deps.values())

"""Inputs, outputs, source and filesets in graph files: read, and every problem named precisely."""

from __future__ import annotations

import pytest

from orchestrator.errors import GraphFileError
from orchestrator.graphs.graphfile import load_graph
from orchestrator.graphs.sourcetree import SourceMount
from orchestrator.graphs.validation import build_graph


def doc(*tasks: dict, **graph) -> dict:
    return {"graph": {"id": "g", **graph}, "tasks": list(tasks)}


def task(tid: str, *deps: str, **extra) -> dict:
    return {"id": tid, "command": "true", "depends_on": list(deps), **extra}


def problems_of(d: dict, source_paths=None) -> list[str]:
    with pytest.raises(GraphFileError) as info:
        build_graph("f.toml", d, source_paths=source_paths)
    return [str(p) for p in info.value.problems]


def test_fields_are_read_with_sources_and_filesets():
    d = doc(
        task("cc", inputs=["src/a.c", "@headers"], outputs=["build/a.o"]),
        task("ld", "cc", inputs="build/a.o", outputs=["build/app"]),
        source=[{"dir": "/tmp/zlib", "at": "src/", "exclude": ["build"]}],
        filesets={"headers": ["src/*.h"]},
        defaults={"inputs": ["src/common.mk"]},
    )
    spec = build_graph("f.toml", d, source_paths=["src/a.c", "src/z.h", "src/common.mk"])
    cc, ld = spec.tasks
    assert cc.inputs == ("src/common.mk", "src/a.c", "@headers") and cc.outputs == ("build/a.o",)
    assert ld.inputs == ("src/common.mk", "build/a.o")
    assert spec.sources == (SourceMount("/tmp/zlib", "src", ("build",)),)
    assert spec.filesets == {"headers": ("src/*.h",)}


def test_a_string_source_is_one_directory_at_the_workspace_root():
    spec = build_graph("f.toml", doc(task("a", inputs=["x.c"]), source="../repo"), source_paths=["x.c"])
    assert spec.sources == (SourceMount("../repo", "", ()),)


def test_graphs_without_io_are_unchanged():
    spec = build_graph("f.toml", doc(task("a"), task("b", "a")))
    assert spec.sources == () and spec.filesets == {} and spec.tasks[0].inputs == ()


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([task("a", outputs=["/abs/x"])], "task 'a': field 'outputs': '/abs/x' is absolute"),
        ([task("a", outputs=["../x"])], "task 'a': field 'outputs': '../x' climbs out of the workspace"),
        ([task("a", inputs=["a/[bc"])], "task 'a': field 'inputs': 'a/[bc' is a bad glob"),
        ([task("a", inputs=["x/**y"])], "task 'a': field 'inputs': 'x/**y' is a bad glob"),
        ([task("a", outputs=[3])], "task 'a': field 'outputs': must be a list of workspace paths or globs"),
        ([task("a", inputs=["@no such"])], "task 'a': field 'inputs': '@no such' does not name a fileset"),
        ([task("a", inputs=["@missing"])], "task 'a': field 'inputs': '@missing' names no fileset"),
        (
            [task("a", outputs=["out/x"]), task("b", outputs=["out/x"])],
            "task 'b': field 'outputs': 'out/x' is also claimed by task 'a'",
        ),
        (
            [task("a", outputs=["out"]), task("b", outputs=["out/x.o"])],
            "task 'b': field 'outputs': 'out/x.o' is also claimed by task 'a'",
        ),
        (
            [task("a", outputs=["out/*.o"]), task("b", outputs=["out/x.o"])],
            "task 'b': field 'outputs': 'out/x.o' is also claimed by task 'a'",
        ),
        (
            [task("a", outputs=["out/*.o"]), task("b", outputs=["out/*.o"])],
            "task 'b': field 'outputs': 'out/*.o' is also claimed by task 'a'",
        ),
        ([task("a", inputs=["x.c"])], "task 'a': field 'inputs': 'x.c' is provided by no task's outputs and no file"),
        (
            [task("a", outputs=["lib.a"]), task("b", inputs=["lib.a"])],
            "task 'b': field 'inputs': 'lib.a' is an output of task 'a': add it to depends_on",
        ),
        (
            [task("a", outputs=["o/1.o"]), task("b", outputs=["o/2.o"]), task("c", "a", inputs=["o/*.o"])],
            "task 'c': field 'inputs': 'o/*.o' is an output of task 'b': add it to depends_on",
        ),
    ],
)
def test_each_io_problem_names_task_and_field(tasks, message):
    assert any(message in p for p in problems_of(doc(*tasks))), problems_of(doc(*tasks))


def test_inputs_provided_by_outputs_of_dependencies_pass():
    d = doc(
        task("a", outputs=["o/1.o"]),
        task("b", outputs=["o/sub/"]),
        task("g", outputs=["gen/*.h"]),
        task("c", "a", "b", "g", inputs=["o/1.o", "o/sub/x.o", "o/*.o", "gen/h/*.h"]),
    )
    assert [t.id for t in build_graph("f.toml", d).tasks] == ["a", "b", "g", "c"]


def test_inputs_are_checked_against_the_source_paths_when_read():
    d = doc(task("a", inputs=["src/a.c", "src/inc", "src/**/*.h", "src/gone.c"]), source="s")
    probs = problems_of(d, source_paths=["src/a.c", "src/inc/z.h"])
    assert probs == [
        "f.toml: task 'a': field 'inputs': 'src/gone.c' is provided by no task's outputs"
        " and no file of the graph's source"
    ]
    build_graph("f.toml", d)  # the source was not read: its inputs are not judged


def test_a_fileset_entry_nothing_provides_names_the_fileset():
    d = doc(task("a", inputs=["@h"]), task("b", inputs=["@h"]), source="s", filesets={"h": ["z.h", "gone.h"]})
    probs = problems_of(d, source_paths=["z.h"])
    assert len(probs) == 2 and all("'gone.h' is provided by no" in p and "(in fileset '@h')" in p for p in probs)


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"source": 3}, "[graph]: field 'source': must be a directory or a list"),
        ({"source": [{"at": "x"}]}, "field 'source': 'dir' must be a non-empty directory path"),
        ({"source": {"dir": "d", "at": "../up"}}, "field 'source': 'at' '../up' climbs out"),
        ({"source": {"dir": "d", "at": "src/*"}}, "field 'source': 'at' 'src/*' must be a folder"),
        ({"source": {"dir": "d", "into": "x"}}, "field 'source': unknown key 'into'"),
        ({"source": {"dir": "d", "exclude": ["/x"]}}, "field 'source': 'exclude' '/x' is absolute"),
        ({"filesets": {"h": ["/usr/include"]}}, "field 'filesets.h': '/usr/include' is absolute"),
        ({"filesets": {"bad name": ["x"]}}, "field 'filesets.bad name': is not a fileset name"),
        ({"filesets": ["x"]}, "field 'filesets': must be a table"),
    ],
)
def test_graph_level_problems(graph, message):
    probs = problems_of(doc(task("a"), **graph))
    assert any(message in p for p in probs), probs


def test_load_graph_walks_the_source_relative_to_the_file(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo/a.c").write_text("int a;")
    f = tmp_path / "g.toml"
    f.write_text(
        '[graph]\nid = "g"\nsource = { dir = "repo", at = "src" }\n'
        '[[tasks]]\nid = "cc"\ncommand = "cc -c src/a.c"\ninputs = ["src/a.c"]\noutputs = ["a.o"]\n'
    )
    assert load_graph(f).source_tree == ""  # validation lists, it does not hash
    spec = load_graph(f, hash_source=True)
    assert [r.path for r in spec.source_files] == ["src/a.c"] and len(spec.source_tree) == 64
    (tmp_path / "repo/a.c").unlink()
    with pytest.raises(GraphFileError, match="'src/a.c' is provided by no"):
        load_graph(f)


def test_an_unreadable_source_is_a_graph_problem(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[graph]\nid = "g"\nsource = "nowhere"\n[[tasks]]\nid = "a"\ncommand = "true"\n')
    with pytest.raises(GraphFileError) as info:
        load_graph(f)
    assert "[graph]: field 'source': source " in str(info.value.problems[0])
    assert "nowhere: is not a directory" in str(info.value.problems[0])

"""Real CMake projects through the Ninja import: examples/zlib and a tiny project written here (two
libraries, a generated header, a file name with a space), configured with ``cmake -G Ninja``,
imported, and their tasks run each in a workspace of its own; then the built program runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.graphs.graphfile import load_graph, parse_document
from orchestrator.graphs.graphwrite import write_document
from orchestrator.graphs.ninja.load import import_ninja
from tests.integration.ninja_support import (
    SUBDIRS,
    TINY,
    ZLIB,
    configure,
    ninja_commands,
    run_in_separate_workspaces,
    write_tree,
)

runner = CliRunner()


def _producer(doc: dict, prefix: str) -> str:
    found = [t["id"] for t in doc["tasks"] if any(o.startswith(prefix) for o in t["outputs"])]
    assert len(found) == 1, found
    return found[0]


def test_zlib_imports_one_task_per_command(tmp_path: Path) -> None:
    build = tmp_path / "zlib build"
    got = import_ninja(configure(ZLIB, build))
    doc, tasks = got.document, {t["id"]: t for t in got.document["tasks"]}
    assert len(tasks) == len(ninja_commands(build))  # every edge but phony and generator ones
    assert got.project == "zlib"
    assert not any("build.ninja" in t["outputs"] for t in tasks.values())
    linked = [i for i in tasks["example"]["inputs"] if i.startswith("build/libz.so.")]  # the real file, no link
    assert len(linked) == 1 and _producer(doc, linked[0]) in tasks["example"]["depends_on"]
    assert {o for d in tasks["example"]["depends_on"] for o in tasks[d]["outputs"]} >= {"build/libz.so.1"}
    for t in tasks.values():
        assert str(tmp_path) not in t["command"] and str(ZLIB) not in t["command"], t["command"]
    mounts = {m["at"]: m["dir"] for m in doc["graph"]["source"]}
    assert mounts == {"src": str(ZLIB), "build": str(build)}
    adler = next(t for t in tasks.values() if "src/adler32.c" in t["inputs"])
    assert adler["outputs"][0].endswith("adler32.c.o") and "@undeclared" in adler["inputs"]
    assert "src/zlib.h" in doc["graph"]["filesets"]["undeclared"]
    assert "build/zconf.h" in doc["graph"]["filesets"]["undeclared"]  # written by cmake's configure


def test_zlib_builds_in_workspaces_that_share_nothing(tmp_path: Path) -> None:
    got = import_ninja(configure(ZLIB, tmp_path / "b"))
    spaces = run_in_separate_workspaces(got.document, tmp_path / "nodes")
    ws = spaces["example"]
    done = subprocess.run([str(ws / "build" / "example")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "zlib version" in done.stdout


def test_a_project_with_two_libraries_a_generated_header_and_a_space(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "tiny src", TINY)
    build = tmp_path / "out:1"  # a colon in the build folder: Ninja writes it as $:
    got = import_ninja(configure(source, build))
    doc, tasks = got.document, {t["id"]: t for t in got.document["tasks"]}
    assert got.project == "tiny"
    assert len(tasks) == len(ninja_commands(build))
    greet = next(t for t in tasks.values() if "src/lib/greet one.c" in t["inputs"])
    header = _producer(doc, "build/gen/version.h")
    assert header in greet["depends_on"]  # the generated header orders the compile that includes it
    hello = tasks["hello"]
    assert _producer(doc, "build/libgreet.a") in hello["depends_on"]
    assert _producer(doc, "build/libcount.so") in hello["depends_on"]
    spaces = run_in_separate_workspaces(doc, tmp_path / "nodes")
    done = subprocess.run([str(spaces["hello"] / "build" / "hello")], capture_output=True, text=True, timeout=30)
    assert done.stdout == "hello 1.2 42\n", done.stderr


def test_a_subdirectory_whose_command_changes_folder(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "sub dirs", SUBDIRS)
    build = tmp_path / "b"
    got = import_ninja(configure(source, build))
    tasks = {t["id"]: t for t in got.document["tasks"]}
    assert len(tasks) == len(ninja_commands(build))
    gen = tasks[_producer(got.document, "build/sub/gen.hpp")]
    assert gen["outputs"] == ["build/sub/gen.hpp"] and gen["inputs"] == ["src/sub/gen.hpp.in"]
    spaces = run_in_separate_workspaces(got.document, tmp_path / "nodes")
    done = subprocess.run([str(spaces["top"] / "build" / "top")], capture_output=True, text=True, timeout=30)
    assert done.stdout == "gen7\n", done.stderr


def test_targets_narrow_the_graph(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "s", TINY)
    build = tmp_path / "b"
    configure(source, build)
    got = import_ninja(build / "build.ninja", targets=("libcount.so",))
    assert sorted(t["id"] for t in got.document["tasks"]) == ["CMakeFiles/count.dir/count/count.c.o", "libcount.so"]


def test_the_graph_file_reads_back_as_written(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "s", TINY)
    build = tmp_path / "b"
    doc = import_ninja(configure(source, build)).document
    for name in ("g.toml", "g.json"):
        write_document(doc, tmp_path / name)
        assert parse_document(name, (tmp_path / name).read_bytes()) == doc


def test_import_writes_a_graph_file_validate_accepts(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "s", TINY)
    build = tmp_path / "b"
    configure(source, build)
    out = tmp_path / "graph.toml"
    result = runner.invoke(app, ["import", "ninja", str(build / "build.ninja"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(load_graph(out).tasks) == len(ninja_commands(build))
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["import", "ninja", str(tmp_path / "nowhere" / "build.ninja")])
    assert missing.exit_code == 2 and "build.ninja: does not exist" in missing.output
    bad = tmp_path / "bad" / "build.ninja"
    write_tree(bad.parent, {"build.ninja": "rule cc\n  command = cc $in\nbuild a.o: cc a.c\nbuild b.o: link b.c\n"})
    result = runner.invoke(app, ["import", "ninja", str(bad)])
    assert result.exit_code == 2 and f"{bad}:4: unknown rule 'link'" in result.output
    write_tree(bad.parent, {"a.c": "", "build.ninja": "rule cc\n  command = cc $in\nbuild a.o: cc a.c\n"})
    result = runner.invoke(app, ["import", "ninja", str(bad), "--target", "c.o"])
    assert result.exit_code == 2 and "unknown target 'c.o'" in result.output
    result = runner.invoke(app, ["build", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_handwritten_manifest_with_relative_paths_like_meson_writes(tmp_path: Path) -> None:
    write_tree(tmp_path / "proj", {"lib.c": "int two(void) { return 2; }\n", "inc/lib.h": "int two(void);\n"})
    write_tree(tmp_path / "proj", {"main.c": '#include <stdio.h>\n#include "lib.h"\n'
                                   'int main(void) { printf("%d\\n", two()); return 0; }\n'})  # fmt: skip
    rules = (
        "cflags = -I../proj/inc\n"
        "rule cc\n  command = cc $cflags -MD -MF $out.d -c $in -o $out\n  depfile = $out.d\n  deps = gcc\n"
        "rule link\n  command = cc $in -o $out\n"
    )
    edges = (
        "build obj/lib.o: cc ../proj/lib.c\nbuild obj/main.o: cc ../proj/main.c\nbuild app: link obj/main.o obj/lib.o\n"
    )
    write_tree(tmp_path / "out", {"build.ninja": rules + edges})
    got = import_ninja(tmp_path / "out" / "build.ninja")
    assert got.project == "proj"  # no CMakeCache: the source is the folder holding the outside inputs
    assert (got.paths.build_at, got.paths.source_at) == ("out", "proj")
    spaces = run_in_separate_workspaces(got.document, tmp_path / "nodes")
    done = subprocess.run([str(spaces["app"] / "out" / "app")], capture_output=True, text=True, timeout=30)
    assert done.stdout == "2\n"

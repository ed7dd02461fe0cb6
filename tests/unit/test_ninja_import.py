"""Ninja edges into a graph document, and the workspace placement of a build's folders (pure)."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import pytest

from orchestrator.errors import NinjaFileError
from orchestrator.graphs.ninja.importer import ImportOptions, build_mounts, graph_document, manifest_paths
from orchestrator.graphs.ninja.manifest import Manifest, parse_manifest
from orchestrator.graphs.ninja.pathmap import PathMap, climb_of, place
from orchestrator.graphs.validation import build_graph

SRC, BUILD = "/home/me/proj src", "/tmp/b:1"
RULES = (
    "rule cc\n  command = cc -I/home/me/proj$ src -c $in -o $out\n  depfile = $out.d\n  deps = gcc\n"
    "  description = CC $out\n"
    "rule ar\n  command = ar rcs $out $in\n"
    "rule link\n  command = cc $in -o $out -Wl,-rpath,/tmp/b:1\n"
    "rule regen\n  command = cmake /home/me/proj$ src\n  generator = 1\n"
    "rule gen\n  command = python3 /home/me/proj$ src/gen.py > $out\n"
)


def manifest(text: str) -> Manifest:
    return parse_manifest("build.ninja", lambda p: {"build.ninja": RULES + text}[p])


def tasks_of(text: str, *, targets: tuple[str, ...] = (), available: set[str] | None = None) -> dict[str, Any]:
    m = manifest(text)
    paths = place(BUILD, SRC, climb_of(manifest_paths(m)))
    have = available if available is not None else {"src/a.c", "src/b.c", "src/main.c", "src/a.h", "src/gen.py"}
    doc = graph_document(m, paths, ImportOptions("g", targets=targets), build_mounts(m, paths, []), have)
    return {"doc": doc, **{t["id"]: t for t in doc["tasks"]}}


LIB = (
    "build a.o: cc /home/me/proj$ src/a.c\n"
    "build b.o: cc /home/me/proj$ src/b.c || gen_headers\n"
    "build gen.h: gen /home/me/proj$ src/gen.py\n"
    "build gen_headers: phony gen.h\n"
    "build liba: ar a.o b.o\n"
    "build main.o: cc /home/me/proj$ src/main.c\n"
    "build app: link main.o | liba || lib_alias\n"
    "build lib_alias: phony liba\n"
    "build build.ninja: regen /home/me/proj$ src/CMakeLists.txt\n"
    "build all: phony app\n"
    "default all\n"
)


def test_one_task_per_real_edge_phony_and_generator_left_out() -> None:
    got = tasks_of(LIB)
    assert sorted(t["id"] for t in got["doc"]["tasks"]) == ["a.o", "app", "b.o", "gen.h", "liba", "main.o"]


def test_dependencies_from_producers_through_phony() -> None:
    got = tasks_of(LIB)
    assert got["app"]["depends_on"] == ["liba", "main.o"]
    assert got["liba"]["depends_on"] == ["a.o", "b.o"]
    assert got["b.o"]["depends_on"] == ["gen.h"]  # order-only, through the phony gen_headers
    assert got["a.o"]["depends_on"] == []


def test_inputs_are_explicit_and_implicit_files_not_order_only() -> None:
    got = tasks_of(LIB)
    assert got["app"]["inputs"] == ["build/main.o", "build/liba"]
    assert got["b.o"]["inputs"] == ["src/b.c", "@undeclared"]  # gen.h is order-only: laid out, not an input
    assert got["gen.h"]["inputs"] == ["src/gen.py"]
    assert got["liba"]["outputs"] == ["build/liba"]


def test_undeclared_fileset_is_what_no_edge_names_explicitly() -> None:
    got = tasks_of(LIB)
    assert got["doc"]["graph"]["filesets"] == {"undeclared": ["src/a.h"]}
    assert "@undeclared" not in got["liba"]["inputs"]


def test_commands_run_in_the_build_folder_with_folders_mapped() -> None:
    got = tasks_of(LIB)
    a = got["a.o"]["command"]
    assert "/home/me" not in a and "/tmp/b:1" not in a
    assert a.startswith("mkdir -p build && cd build || exit 1; ")
    assert a.endswith("""cc -I"$NIYANTRA_WORKSPACE"/src -c ''"$NIYANTRA_WORKSPACE"'/src/a.c' -o a.o""")
    assert got["app"]["command"].endswith("""-Wl,-rpath,"$NIYANTRA_WORKSPACE"/build""")
    assert got["a.o"]["title"] == "CC a.o"


def test_commands_expand_to_the_workspace_paths(tmp_path) -> None:
    ws = tmp_path / "work space"
    command = tasks_of(LIB)["a.o"]["command"].split("; ", 1)[1]
    out = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + command], env={"NIYANTRA_WORKSPACE": str(ws)}, capture_output=True, text=True
    )
    assert out.stdout.splitlines() == ["cc", f"-I{ws}/src", "-c", f"{ws}/src/a.c", "-o", "a.o"]


def test_output_folders_are_made_first() -> None:
    got = tasks_of("build obj/x$ y/a.o: cc /home/me/proj$ src/a.c\n")
    assert got["obj/x y/a.o"]["command"].startswith("mkdir -p 'build/obj/x y' && cd build || exit 1; ")
    assert got["obj/x y/a.o"]["outputs"] == ["build/obj/x y/a.o"]


def test_targets_given_default_and_roots() -> None:
    assert sorted(t["id"] for t in tasks_of(LIB, targets=("liba",))["doc"]["tasks"]) == ["a.o", "b.o", "gen.h", "liba"]
    no_default = LIB.replace("default all\n", "")
    assert sorted(t["id"] for t in tasks_of(no_default)["doc"]["tasks"]) == [
        "a.o",
        "app",
        "b.o",
        "gen.h",
        "liba",
        "main.o",
    ]


def test_unknown_target_is_named_with_a_hint() -> None:
    with pytest.raises(NinjaFileError, match=r"unknown target 'lib'; did you mean 'liba'"):
        tasks_of(LIB, targets=("lib",))


def test_missing_input_names_file_line_and_needer() -> None:
    with pytest.raises(
        NinjaFileError, match=r"build\.ninja:\d+: '/home/me/proj src/a\.c', needed by 'a\.o', is missing"
    ):
        tasks_of(LIB, available=set())


def test_implicit_outputs_validations_and_rspfile() -> None:
    text = (
        "rule ld\n  command = ld @$out.rsp\n  rspfile = $out.rsp\n  rspfile_content = $in /home/me/proj$ src/x.ld\n"
        "rule check\n  command = true\n"
        "build a.o: cc /home/me/proj$ src/a.c |@ lint\n"
        "build lint: check /home/me/proj$ src/a.c\n"
        "build app | app.map: ld a.o\n"
    )
    got = tasks_of(text, targets=("app",))
    assert got["app"]["outputs"] == ["build/app", "build/app.map"]
    assert "lint" in got and got["a.o"]["depends_on"] == [] and got["lint"]["depends_on"] == []
    assert (
        """cd build && printf '%s' 'a.o '"$NIYANTRA_WORKSPACE"/src/x.ld > app.rsp || exit 1; ld @app.rsp"""
        in (got["app"]["command"])
    )


def test_cycle_through_phony_is_an_error() -> None:
    with pytest.raises(NinjaFileError, match="dependency cycle"):
        tasks_of("build x.o: cc /home/me/proj$ src/a.c || p\nbuild p: phony x.o\n", targets=("x.o",))


def test_output_outside_both_folders_is_refused() -> None:
    with pytest.raises(NinjaFileError, match=r"output '/usr/lib/x' is outside"):
        tasks_of("build /usr/lib/x: ar a.o\nbuild a.o: cc /home/me/proj$ src/a.c\n", targets=("/usr/lib/x",))


def test_a_safe_id_document_is_a_valid_graph() -> None:
    text = "build liba: ar /home/me/proj$ src/a.c\nbuild app: link /home/me/proj$ src/main.c liba\n"
    doc = tasks_of(text)["doc"]
    spec = build_graph("build.ninja", doc, source_paths=["src/a.c", "src/main.c"])
    assert {t.id: t.depends_on for t in spec.tasks} == {"liba": (), "app": ("liba",)}


def test_mounts_leave_out_outputs_depfiles_state_and_generator_files() -> None:
    m = manifest(LIB)
    paths = place(BUILD, SRC)
    present = ["a.o", "a.o.d", ".ninja_log", "build.ninja", "config.h", "CMakeFiles/x[1].txt", "app"]
    mounts = build_mounts(m, paths, present)
    assert mounts[0] == {"dir": SRC, "at": "src", "exclude": []}
    assert mounts[1]["at"] == "build"
    assert sorted(mounts[1]["exclude"]) == [".ninja_log", "a.o", "a.o.d", "app", "build.ninja"]


# --- placement and command mapping ---------------------------------------------------------

PLACES = [
    ("siblings", "/x/build", "/y/src", 0, ("build", "src")),
    ("build inside source", "/p/src/build", "/p/src", 0, ("src/build", "src")),
    ("source inside build", "/b", "/b/third/src", 0, ("build", "build/third/src")),
    ("relative climbing once", "/w/out", "/w/proj", 1, ("out", "proj")),
    ("relative climbing twice", "/w/out/Release", "/w/proj", 2, ("out/Release", "proj")),
]


@pytest.mark.parametrize(("build", "source", "climb", "want"), [p[1:] for p in PLACES], ids=[p[0] for p in PLACES])
def test_place(build: str, source: str, climb: int, want: tuple[str, str]) -> None:
    p = place(build, source, climb)
    assert (p.build_at, p.source_at) == want
    if climb:  # the build folder's relative paths still lead to the source in the workspace
        rel = "/".join([".."] * climb) + "/" + source.rsplit("/", 1)[1]
        import posixpath

        assert posixpath.normpath(posixpath.join(p.build_at, rel)) == p.source_at


MAP = PathMap("/b", "build", "/s rc", "src")
COMMAND_CASES = [
    ("bare", "cc -I/b -c x", 'cc -I"$NIYANTRA_WORKSPACE"/build -c x'),
    ("folder boundary", "cc /b2/x /bb /b.d", "cc /b2/x /bb /b.d"),
    ("double quotes", 'cc "/s rc/a b.c"', 'cc "${NIYANTRA_WORKSPACE}/src/a b.c"'),
    ("single quotes", "cc '/s rc/a.c'", """cc ''"$NIYANTRA_WORKSPACE"'/src/a.c'"""),
    ("escaped quote before", "echo \\' /b/x", """echo \\' "$NIYANTRA_WORKSPACE"/build/x"""),
    ("cd inside the command", "cd /b/sub && ls", 'cd "$NIYANTRA_WORKSPACE"/build/sub && ls'),
]


@pytest.mark.parametrize(("text", "want"), [c[1:] for c in COMMAND_CASES], ids=[c[0] for c in COMMAND_CASES])
def test_command_mapping(text: str, want: str) -> None:
    assert MAP.command(text) == want


@pytest.mark.parametrize("text", ["cc '/s rc/a b.c' \"/b/x y\" /b/z", "a 'it''s' /b/q", "plain"])
def test_mapped_commands_expand_like_the_originals_moved(text: str) -> None:
    def words(command: str, ws: str) -> list[str]:
        return shlex.split(subprocess.run(
            ["bash", "-c", "for w in " + command + "; do printf '%q ' \"$w\"; done"],
            env={"NIYANTRA_WORKSPACE": ws}, capture_output=True, text=True, check=True,
        ).stdout)  # fmt: skip

    ws = "/w s"
    want = [w.replace("/s rc", ws + "/src").replace("/b/", ws + "/build/") for w in words(text, ws)]
    assert words(MAP.command(text), ws) == want


def test_shell_word_round_trip() -> None:
    out = subprocess.run(
        ["bash", "-c", "printf '%s' " + MAP.shell_word("a '/s rc/x' $HOME /b")],
        env={"NIYANTRA_WORKSPACE": "/w"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout == "a '/w/src/x' $HOME /w/build"


def test_workspace_path() -> None:
    assert MAP.workspace_path("obj/a.o") == "build/obj/a.o"
    assert MAP.workspace_path("/s rc/a.c") == "src/a.c"
    assert MAP.workspace_path("/usr/include/stdio.h") is None
    assert MAP.workspace_path("../s rc/a.c") == "src/a.c"


def test_a_build_folder_inside_the_source_is_left_out_of_it() -> None:
    m = manifest("build a.o: cc /p/a.c\n")
    mounts = build_mounts(m, place("/p/build", "/p"), [])
    assert mounts == [
        {"dir": "/p", "at": "src", "exclude": ["build"]},
        {"dir": "/p/build", "at": "src/build", "exclude": []},
    ]


def test_a_phony_with_nothing_behind_it_marks_a_plain_file() -> None:
    text = (
        "build gen.h | /tmp/b$:1/gen.h: gen /home/me/proj$ src/gen.py /home/me/proj$ src/gone.txt\n"
        "build /home/me/proj$ src/gen.py /home/me/proj$ src/gone.txt: phony\n"
    )
    got = tasks_of(text, targets=("gen.h",))
    assert got["gen.h"]["inputs"] == ["src/gen.py"]  # gone.txt is missing: Ninja does not need it either
    assert got["gen.h"]["outputs"] == ["build/gen.h"]  # named twice (relative, absolute), declared once


def test_estimates_from_an_earlier_ninja_log() -> None:
    from orchestrator.graphs.ninja.load import ninja_log_durations

    log = "# ninja log v5\n2\t57\t1796\ta.o\th1\n5\t1200\t1796\tapp\th2\nbad line\n60\t70\t1797\ta.o\th3\n"
    durations = ninja_log_durations(log)
    assert durations == {"a.o": 0.01, "app": 1.195}  # the last record of an output wins
    m = manifest("build a.o: cc /home/me/proj$ src/a.c\nbuild app: link a.o\n")
    paths = place(BUILD, SRC)
    doc = graph_document(m, paths, ImportOptions("g", estimates=durations), build_mounts(m, paths, []), {"src/a.c"})
    assert {t["id"]: t["estimate"] for t in doc["tasks"]} == {"a.o": 0.01, "app": 1.195}

"""Finding a task's declared outputs in its workspace: plain paths, folders, globs, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node_agent.artifacts.collect import Found, find_outputs, is_glob
from node_agent.artifacts.errors import NotAFile, OutputMissing, UnsafePath


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    files = {
        "libz.a": 0o644,
        "example": 0o755,
        "CMakeFiles/zlib.dir/adler32.c.o": 0o644,
        "CMakeFiles/zlib.dir/crc32.c.o": 0o644,
        "CMakeFiles/zlib.dir/.hidden.o": 0o644,
        "out dir/report v1:final.txt": 0o644,
        "logs/a/b/deep.log": 0o644,
        ".niyantra/node/run/quality": 0o644,
    }
    for rel, mode in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
        os.chmod(p, mode)
    os.symlink("libz.a", root / "libz-link.a")
    return root


@pytest.mark.parametrize(("pattern", "glob"), [("a.o", False), ("*.o", True), ("a?.o", True), ("[ab].o", True)])
def test_is_glob(pattern, glob):
    assert is_glob(pattern) is glob


Z = "CMakeFiles/zlib.dir/"


@pytest.mark.parametrize(
    ("declared", "paths"),
    [
        (["libz.a"], ["libz.a"]),
        (["./libz.a", "libz.a"], ["libz.a"]),
        ([Z + "*.o"], [Z + ".hidden.o", Z + "adler32.c.o", Z + "crc32.c.o"]),
        ([Z + "*.c.o", Z + "adler32.c.o"], [Z + "adler32.c.o", Z + "crc32.c.o"]),
        (["**/*.log"], ["logs/a/b/deep.log"]),
        (["logs"], ["logs/a/b/deep.log"]),
        (["out dir/report v1:final.txt"], ["out dir/report v1:final.txt"]),
        (["*.a"], ["libz-link.a", "libz.a"]),
    ],
)
def test_declared_outputs_resolve_to_sorted_unique_files(ws, declared, paths):
    found, empty = find_outputs(ws, declared)
    assert [f.path for f in found] == paths and empty == []


def test_everything_but_the_agents_own_folder(ws):
    found, _ = find_outputs(ws, ["**/*"])
    names = [f.path for f in found]
    assert len(names) == 8 and "example" in names and not [n for n in names if n.startswith(".niyantra")]


def test_modes_are_recorded_as_the_executable_bit(ws):
    found, _ = find_outputs(ws, ["example", "libz.a", "libz-link.a"])
    assert found == [Found("example", 0o755), Found("libz-link.a", 0o644), Found("libz.a", 0o644)]


def test_a_glob_that_matches_nothing_is_reported_not_an_error(ws):
    found, empty = find_outputs(ws, ["libz.a", "*.dylib", "docs/**/*.html"])
    assert [f.path for f in found] == ["libz.a"] and empty == ["*.dylib", "docs/**/*.html"]


def test_a_missing_plain_path_names_the_path(ws):
    with pytest.raises(OutputMissing) as e:
        find_outputs(ws, ["libz.a", "bin/zlib example"])
    assert e.value.path == "bin/zlib example" and "bin/zlib example" in str(e.value)


@pytest.mark.parametrize("declared", ["../x", "/etc/passwd", "a/../../b", "../*.o"])
def test_a_declared_output_outside_the_workspace_is_refused(ws, declared):
    with pytest.raises(UnsafePath) as e:
        find_outputs(ws, [declared])
    assert e.value.path == declared


def test_a_symlink_out_is_refused_whether_named_or_globbed_or_inside_a_folder(ws, tmp_path):
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", ws / "leak")
    (ws / "dist").mkdir()
    os.symlink(tmp_path / "secret", ws / "dist" / "leak2")
    for declared, named in [("leak", "leak"), ("lea*", "leak"), ("dist", "dist/leak2")]:
        with pytest.raises(UnsafePath) as e:
            find_outputs(ws, [declared])
        assert e.value.path == named


def test_a_folder_symlink_out_is_not_descended_but_refused(ws, tmp_path):
    os.symlink(tmp_path, ws / "logs" / "up")
    with pytest.raises(UnsafePath) as e:
        find_outputs(ws, ["logs"])
    assert e.value.path == "logs/up"


def test_a_dangling_link_and_a_fifo_are_not_files(ws):
    os.symlink("nowhere", ws / "dangling")
    os.mkfifo(ws / "pipe")
    for name, kind in [("dangling", "dangling"), ("pipe", "fifo")]:
        with pytest.raises(NotAFile, match=kind) as e:
            find_outputs(ws, [name])
        assert e.value.path == name

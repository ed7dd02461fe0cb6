"""Workspace path safety: the text table, then symlinks on a real folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node_agent.artifacts.errors import UnsafePath
from node_agent.artifacts.paths import clean_relpath, parent_inside, resolve_inside


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("a.o", "a.o"),
        ("./a.o", "a.o"),
        ("lib/libz.a", "lib/libz.a"),
        ("a/../b", "b"),
        ("a//b/", "a/b"),
        ("dir with spaces/file name.txt", "dir with spaces/file name.txt"),
        ("pkg:target/out:v1.o", "pkg:target/out:v1.o"),
        ("CMakeFiles/zlib.dir/adler32.c.o", "CMakeFiles/zlib.dir/adler32.c.o"),
        ("@scope/name=1/ünïcode", "@scope/name=1/ünïcode"),
        ("..a/b", "..a/b"),
        ("a/..b", "a/..b"),
        ("...", "..."),
    ],
)
def test_paths_that_stay_inside(path, clean):
    assert clean_relpath(path) == clean


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x", "climbs out"),
        ("..", "climbs out"),
        ("a/../../b", "climbs out"),
        ("a/b/../../../c", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("//server/share", "absolute"),
        ("", "empty"),
        (".", "workspace itself"),
        ("a/..", "workspace itself"),
        ("a\0b", "NUL"),
    ],
)
def test_paths_refused_by_their_text_name_the_path(path, why):
    with pytest.raises(UnsafePath, match=why) as e:
        clean_relpath(path)
    assert e.value.path == path and repr(path) in str(e.value)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "inside").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, ws / "out")  # a folder link leading out
    os.symlink(outside / "secret", ws / "secret")  # a file link leading out
    os.symlink("inside", ws / "in")  # a folder link that stays inside
    os.symlink("../../etc", ws / "inside" / "up")  # relative, climbs out
    return ws


@pytest.mark.parametrize("rel", ["out/secret", "secret", "out", "inside/up/passwd"])
def test_a_symlink_leading_out_is_refused_naming_the_path(workspace, rel):
    with pytest.raises(UnsafePath, match="outside the workspace") as e:
        resolve_inside(workspace, rel)
    assert e.value.path == rel


@pytest.mark.parametrize("rel", ["inside/x", "in/x", "new/folder/file", "in"])
def test_paths_through_links_that_stay_inside_are_fine(workspace, rel):
    assert resolve_inside(workspace, rel) == workspace / rel


def test_a_layout_may_replace_a_final_symlink_but_never_write_through_a_folder_link(workspace):
    assert parent_inside(workspace, "secret") == workspace / "secret"  # the link itself gets replaced
    with pytest.raises(UnsafePath, match="folder resolves to"):
        parent_inside(workspace, "out/new-file")

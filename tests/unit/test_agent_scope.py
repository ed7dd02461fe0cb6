"""Scope globs, workspace snapshots and their diff (pure or on a temp dir, no server)."""

from __future__ import annotations

import os

import pytest

from node_agent.scope import Change, describe, diff, in_scope, violations
from node_agent.workspace import snapshot, workspace_dir


@pytest.mark.parametrize(
    ("path", "scope", "allowed"),
    [
        ("deploy/a.yaml", ("deploy/**",), True),
        ("deploy/x/y/z.yaml", ("deploy/**",), True),
        ("deployment/a", ("deploy/**",), False),
        ("build/app.tar", ("build/*.tar",), True),
        ("build/sub/app.tar", ("build/*.tar",), False),
        ("build/sub/app.o", ("build",), True),  # a directory covers everything below it
        ("build/sub/app.o", ("build/",), True),
        ("src/main.c", ("**/*.o",), False),
        ("src/deep/main.o", ("**/*.o",), True),
        ("main.o", ("**/*.o",), True),
        ("notes.txt", ("./notes.txt",), True),
        ("a1.log", ("a?.log",), True),
        ("a12.log", ("a?.log",), False),
        ("v2.txt", ("v[0-9].txt",), True),
        ("vx.txt", ("v[!0-9].txt",), True),
        ("v2.txt", ("v[!0-9].txt",), False),
        ("a+b(c).txt", ("a+b(c).txt",), True),  # regex metacharacters are literal
        ("anything", ("**",), True),
        ("out/x", ("docs/**", "out/*"), True),
    ],
)
def test_in_scope(path, scope, allowed):
    assert in_scope(path, scope) is allowed


F = "f"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({}, {"a": (F, 1, 1, "h1")}, [Change("a", "created")]),
        ({"a": (F, 1, 1, "h1")}, {}, [Change("a", "deleted")]),
        ({"a": (F, 1, 1, "h1")}, {"a": (F, 1, 2, "h1")}, []),  # touched, same content
        ({"a": (F, 1, 1, "h1")}, {"a": (F, 1, 1, "h2")}, [Change("a", "changed")]),  # coarse mtime
        ({"a": (F, 1, 1, "h1")}, {"a": (F, 2, 2, "h2")}, [Change("a", "changed")]),
        ({"a": (F, 9, 1, "")}, {"a": (F, 9, 2, "")}, [Change("a", "changed")]),  # too big to hash
        ({"a": (F, 1, 1, "h1")}, {"a": ("l", 1, 1, "target")}, [Change("a", "changed")]),
        ({"b": (F, 1, 1, "x"), "a": (F, 1, 1, "y")}, {}, [Change("a", "deleted"), Change("b", "deleted")]),
    ],
)
def test_diff(before, after, expected):
    assert diff(before, after) == expected


def test_violations_and_their_description():
    changes = [Change("deploy/a", "created"), Change("src/x.c", "changed"), Change("README", "deleted")]
    found = violations(changes, ("deploy/**",))
    assert found == [Change("src/x.c", "changed"), Change("README", "deleted")]
    assert describe(found) == "scope violation: changed outside its declared scope: src/x.c (changed), README (deleted)"
    assert violations(changes, ()) == []  # no declared scope: not checked
    many = [Change(f"f{i}", "created") for i in range(25)]
    assert describe(many, limit=3).endswith("f0 (created), f1 (created), f2 (created) and 22 more")


def test_snapshot_sees_creates_changes_deletes_and_links(tmp_path):
    ws = workspace_dir(tmp_path, "task", "n1", "g", "t")
    assert ws == tmp_path / "n1" / "g" / "t" and ws.is_dir()
    (ws / "keep.txt").write_text("same")
    (ws / "edit.txt").write_text("old")
    (ws / "gone.txt").write_text("bye")
    (ws / "sub").mkdir()
    (ws / ".niyantra").mkdir()
    before = snapshot(ws)
    (ws / "edit.txt").write_text("new")
    (ws / "gone.txt").unlink()
    (ws / "sub" / "deep.txt").write_text("x")
    os.symlink("keep.txt", ws / "link")
    (ws / ".niyantra" / "agent-owned").write_text("ignored")
    (ws / "emptydir").mkdir()
    os.utime(ws / "keep.txt", ns=(1, 1))  # touched only
    after = snapshot(ws)
    assert diff(before, after) == [
        Change("edit.txt", "changed"),
        Change("gone.txt", "deleted"),
        Change("link", "created"),
        Change("sub/deep.txt", "created"),
    ]


def test_shared_workspace_is_the_workdir(tmp_path):
    assert workspace_dir(tmp_path, "shared", "n1", "g", "t") == tmp_path

"""Source manifests: deterministic, content-addressed, and refusing what cannot be laid out."""

from __future__ import annotations

import hashlib
import os

import pytest

from orchestrator.errors import SourceTreeError
from orchestrator.graphs.sourcetree import SourceMount, manifest_of, manifest_of_mounts, source_paths
from schemas.codec import manifest_digest


def _tree(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def test_every_file_at_its_relative_posix_path_sorted_with_digest_size_mode(tmp_path):
    _tree(tmp_path, {"b.c": b"int b;", "a dir/z:1.h": b"#pragma once\n", "tools/gen.sh": b"#!/bin/sh\n"})
    os.chmod(tmp_path / "tools/gen.sh", 0o700)
    (tmp_path / "empty").mkdir()
    m = manifest_of(tmp_path)
    assert [f.path for f in m.files] == ["a dir/z:1.h", "b.c", "tools/gen.sh"]
    b = m.files[1]
    assert b.digest == hashlib.sha256(b"int b;").hexdigest() and b.size == 6 and b.mode == 0o644
    assert m.files[2].mode == 0o755 and m.files[0].mode == 0o644


def test_the_same_tree_elsewhere_gives_the_same_digest_and_a_change_another(tmp_path):
    files = {f"d{i % 3}/f{i}.c": bytes([i]) * i for i in range(30)}
    _tree(tmp_path / "one", files)
    _tree(tmp_path / "two", dict(reversed(list(files.items()))))
    first, second = manifest_of(tmp_path / "one"), manifest_of(tmp_path / "two")
    assert first == second and manifest_digest(first) == manifest_digest(second)
    (tmp_path / "two/d1/f1.c").write_bytes(b"changed")
    assert manifest_digest(manifest_of(tmp_path / "two")) != manifest_digest(first)


def test_at_prefixes_paths_and_exclude_prunes_files_and_folders(tmp_path):
    _tree(tmp_path, {"a.c": b"a", "build/x.o": b"o", "build/sub/y.o": b"o", "doc/n.txt": b"n", ".git/HEAD": b"h"})
    m = manifest_of(tmp_path, at="src", exclude=["build", ".git", "**/*.txt"])
    assert [f.path for f in m.files] == ["src/a.c"]


def test_mounts_merge_and_source_paths_lists_them_without_hashing(tmp_path):
    _tree(tmp_path / "s", {"a.c": b"a"})
    _tree(tmp_path / "b", {"conf.h": b"c"})
    mounts = [SourceMount("s", "src"), SourceMount(str(tmp_path / "b"), "build")]
    assert source_paths(mounts, tmp_path) == ["build/conf.h", "src/a.c"]
    assert [f.path for f in manifest_of_mounts(mounts, tmp_path).files] == ["build/conf.h", "src/a.c"]


def test_two_mounts_giving_one_path_are_refused(tmp_path):
    _tree(tmp_path / "s", {"a.c": b"a"})
    _tree(tmp_path / "t", {"a.c": b"b"})
    with pytest.raises(SourceTreeError, match="two mounts overlap"):
        manifest_of_mounts([SourceMount("s"), SourceMount("t")], tmp_path)


def test_a_symlink_to_a_file_inside_is_recorded_as_its_content(tmp_path):
    _tree(tmp_path, {"real.h": b"x"})
    os.symlink("real.h", tmp_path / "alias.h")
    files = {f.path: f.digest for f in manifest_of(tmp_path).files}
    assert files == {"alias.h": hashlib.sha256(b"x").hexdigest(), "real.h": hashlib.sha256(b"x").hexdigest()}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root, out: os.symlink(out / "secret", root / "leak"), "leading out of the source tree"),
        (lambda root, out: os.symlink(root / "missing", root / "dangling"), "symlink to nothing"),
        (lambda root, out: os.symlink(root / "d", root / "dirlink"), "symlink to a folder"),
        (lambda root, out: os.mkfifo(root / "pipe"), "not a regular file"),
    ],
)
def test_what_cannot_be_laid_out_is_refused_naming_it(tmp_path, make, message):
    root, out = tmp_path / "src", tmp_path / "outside"
    _tree(root, {"d/a.c": b"a"})
    _tree(out, {"secret": b"s"})
    make(root, out)
    with pytest.raises(SourceTreeError, match=message) as info:
        manifest_of(root)
    assert str(root) in str(info.value)
    manifest_of(root, exclude=["leak", "dangling", "dirlink", "pipe"])  # excluded, the rest is fine


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(SourceTreeError, match="is not a directory"):
        manifest_of(tmp_path / "nope")

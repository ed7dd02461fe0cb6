"""Workspace layout from the local cache: the plan's checks, hardlinks and copies, modes, refusals."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.digest import file_mode, hash_file, is_digest
from node_agent.artifacts.errors import LayoutFailed, UnsafePath
from node_agent.artifacts.layout import Placement, lay_out, plan_layout
from schemas.records import ArtifactRecord as R


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


A, B = sha(b"a"), sha(b"b")


def test_hash_file_streams_a_file_bigger_than_its_read_chunk(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "f").write_bytes(data)
    assert hash_file(str(tmp_path / "f")) == (sha(data), len(data))


@pytest.mark.parametrize(
    ("st_mode", "mode"),
    [(0o100644, 0o644), (0o100600, 0o644), (0o100755, 0o755), (0o100700, 0o755), (0o100744, 0o755), (0o100654, 0o755)],
)
def test_a_recorded_mode_is_only_the_executable_bit(st_mode, mode):
    assert file_mode(st_mode) == mode


@pytest.mark.parametrize(("value", "ok"), [(A, True), (A.upper(), False), (A[:-1], False), ("g" * 64, False)])
def test_digest_shape(value, ok):
    assert is_digest(value) is ok


def test_a_plan_is_sorted_clean_and_without_repeats():
    plan = plan_layout([R(path="b/./x", digest=A), R(path="a", digest=B, mode=0o755), R(path="b/x", digest=A)])
    assert plan == [Placement("a", B, True), Placement("b/x", A, False)]


@pytest.mark.parametrize(
    ("entries", "error", "named"),
    [
        ([R(path="../x", digest=A)], UnsafePath, "../x"),
        ([R(path="/etc/passwd", digest=A)], UnsafePath, "/etc/passwd"),
        ([R(path="a/../../b", digest=A)], UnsafePath, "a/../../b"),
        ([R(path="x", digest=A), R(path="x", digest=B)], LayoutFailed, "x"),
        ([R(path="x", digest=A), R(path="x", digest=A, mode=0o755)], LayoutFailed, "x"),
        ([R(path="lib", digest=A), R(path="lib/a.o", digest=B)], LayoutFailed, "lib"),
        ([R(path="x", digest="not-a-digest")], LayoutFailed, "x"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_path(entries, error, named):
    with pytest.raises(error) as e:
        plan_layout(entries)
    assert e.value.path == named


@pytest.fixture
def cache(tmp_path: Path) -> LocalCache:
    c = LocalCache(tmp_path / "cache")
    for data in (b"a", b"b"):
        src = tmp_path / "src"
        src.write_bytes(data)
        c.add_file(src, sha(data))
    return c


def test_hardlinked_files_are_the_cache_blobs_read_only_and_executable_as_declared(tmp_path, cache):
    ws = tmp_path / "ws"
    plan = plan_layout([R(path="src/a.c", digest=A), R(path="tools/gen sh", digest=B, mode=0o755)])
    assert lay_out(plan, ws, cache).linked == 2
    a, tool = ws / "src/a.c", ws / "tools/gen sh"
    assert a.read_bytes() == b"a" and os.path.samefile(a, cache.path(A))
    assert stat.S_IMODE(a.stat().st_mode) == 0o444 and stat.S_IMODE(tool.stat().st_mode) == 0o555
    assert os.access(tool, os.X_OK) and not os.access(a, os.X_OK)
    again = lay_out(plan, ws, cache)
    assert (again.linked, again.unchanged) == (0, 2)


def test_copies_are_private_writable_and_keep_the_mode(tmp_path, cache):
    ws = tmp_path / "ws"
    plan = plan_layout([R(path="a", digest=A), R(path="x", digest=B, mode=0o755)])
    assert lay_out(plan, ws, cache, mode="copy").copied == 2
    assert stat.S_IMODE((ws / "a").stat().st_mode) == 0o644 and stat.S_IMODE((ws / "x").stat().st_mode) == 0o755
    (ws / "a").write_bytes(b"changed by the task")
    assert cache.path(A).read_bytes() == b"a"


def test_a_file_or_symlink_already_there_is_replaced_never_written_through(tmp_path, cache):
    ws = tmp_path / "ws"
    ws.mkdir()
    target = ws / "elsewhere"
    target.write_bytes(b"keep me")
    os.symlink("elsewhere", ws / "a")
    (ws / "b").write_bytes(b"stale")
    lay_out(plan_layout([R(path="a", digest=A), R(path="b", digest=B)]), ws, cache)
    assert not (ws / "a").is_symlink() and (ws / "a").read_bytes() == b"a"
    assert target.read_bytes() == b"keep me" and (ws / "b").read_bytes() == b"b"


def test_a_folder_link_leading_out_is_refused_before_anything_is_written(tmp_path, cache):
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    os.symlink(outside, ws / "out")
    plan = plan_layout([R(path="a", digest=A), R(path="out/b", digest=B)])
    with pytest.raises(UnsafePath) as e:
        lay_out(plan, ws, cache)
    assert e.value.path == "out/b"
    assert list(outside.iterdir()) == [] and not (ws / "a").exists()


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda ws: (ws / "a").mkdir(), "a folder is already there"),
        (lambda ws: (ws / "d").write_bytes(b"file"), "where one of its folders must be"),
    ],
)
def test_something_in_the_way_fails_naming_the_path(tmp_path, cache, setup, why):
    ws = tmp_path / "ws"
    ws.mkdir()
    setup(ws)
    entry = R(path="a", digest=A) if "already" in why else R(path="d/x", digest=A)
    with pytest.raises(LayoutFailed, match=why) as e:
        lay_out(plan_layout([entry]), ws, cache)
    assert e.value.path == entry.path


def test_a_blob_the_cache_does_not_hold_is_an_error_not_an_empty_file(tmp_path, cache):
    with pytest.raises(LayoutFailed, match="not in the local cache"):
        lay_out(plan_layout([R(path="c", digest=sha(b"c"))]), tmp_path / "ws", cache)
    assert not (tmp_path / "ws" / "c").exists()


def test_the_cache_refuses_a_file_that_does_not_hash_to_the_digest(tmp_path):
    from node_agent.artifacts.errors import BlobCorrupt

    c = LocalCache(tmp_path / "cache")
    (tmp_path / "f").write_bytes(b"other")
    with pytest.raises(BlobCorrupt):
        c.add_file(tmp_path / "f", A)
    assert not c.has(A) and c.clear_partials() == 0


def test_a_task_writing_into_a_hardlinked_input_never_changes_what_the_cache_lays_out(tmp_path, cache):
    ws = tmp_path / "ws"
    lay_out(plan_layout([R(path="a", digest=A)]), ws, cache)
    os.chmod(ws / "a", 0o644)  # what a task run as root can do without asking
    with open(ws / "a", "ab") as f:
        f.write(b" appended in place")
    assert not cache.has(A)  # the shared inode's mtime moved: dropped, to be fetched again
    assert not cache.path(A).exists()
    with pytest.raises(LayoutFailed, match="not in the local cache"):
        lay_out(plan_layout([R(path="again/a", digest=A)]), ws, cache)

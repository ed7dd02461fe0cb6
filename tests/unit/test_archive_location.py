"""Which archive a read command reads (pure), and the record the archive projector publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.archive.location import DEFAULT_ARCHIVE, Instance, choose_archive, has_files
from schemas import codec
from schemas.instance import ArchiveLocation

HERE = "host-a"
PUB = ArchiveLocation(directory="/srv/inst/archive", host=HERE)
FAR = ArchiveLocation(directory="/srv/inst/archive", host="host-b")


@pytest.mark.parametrize(
    ("archive_dir", "data_dir", "published", "directory", "how", "elsewhere"),
    [
        (Path("/x"), Path("/d"), PUB, Path("/x"), "--archive-dir", None),  # the archive named wins
        (None, Path("/d"), PUB, Path("/d/archive"), "--data-dir", None),  # then the data folder named
        (Path("/x"), None, FAR, Path("/x"), "--archive-dir", None),  # named: another host does not matter
        (None, None, PUB, Path("/srv/inst/archive"), "published by the instance", None),
        (None, None, FAR, Path("/srv/inst/archive"), "published by the instance", "host-b"),
        (None, None, None, DEFAULT_ARCHIVE, "the default", None),
    ],
)
def test_choose_archive(archive_dir, data_dir, published, directory, how, elsewhere):
    c = choose_archive(archive_dir, data_dir, published, HERE)
    assert (c.directory, c.how, c.elsewhere) == (directory, how, elsewhere)


def test_the_location_round_trips_and_garbage_is_no_location():
    loc = ArchiveLocation(directory="/a b/日本/archive", host="h.example", pid=7)
    assert codec.decode_location(codec.encode_location(loc)) == loc
    assert codec.decode_location(b'{"directory": "/a", "host": "h", "later_field": 1}') == ArchiveLocation(
        directory="/a", host="h"
    )
    for bad in (b"", b"{", b'{"host": "h"}', b'{"directory": 3, "host": "h"}'):
        assert codec.decode_location(bad) is None


def test_an_instance_owns_only_its_published_folder(tmp_path):
    mine = Instance(ArchiveLocation(directory=str(tmp_path / "archive"), host=HERE), head=9)
    assert mine.owns(tmp_path / "archive") and not mine.owns(tmp_path / "other")
    assert not Instance(None, head=9).owns(tmp_path / "archive")


def test_has_files_needs_an_archive_file(tmp_path):
    assert not has_files(tmp_path / "missing") and not has_files(tmp_path)
    (tmp_path / "day=2026-01-01").mkdir()
    (tmp_path / "day=2026-01-01" / ".tmp-1.parquet").write_text("")
    assert not has_files(tmp_path)
    (tmp_path / "day=2026-01-01" / "events-1-4.parquet").write_text("")
    assert has_files(tmp_path)

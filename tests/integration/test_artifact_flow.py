"""Outputs collected on one node, laid out on another (separate workdirs, caches and connections)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nats
import pytest

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.collect import collect_outputs
from node_agent.artifacts.errors import BlobTooLarge, OutputMissing, UnsafePath
from node_agent.artifacts.layout import materialize
from node_agent.artifacts.store import ArtifactStore, StoreSettings
from schemas import subjects as S


def build(ws: Path) -> None:
    """What a compile-and-link task leaves in its workspace."""
    (ws / "CMakeFiles/zlib.dir").mkdir(parents=True)
    for name in ("adler32.c.o", "crc32.c.o"):
        (ws / "CMakeFiles/zlib.dir" / name).write_bytes(os.urandom(50_000))
    (ws / "libz.a").write_bytes(os.urandom(200_000))
    (ws / "example").write_bytes(b"\x7fELF" + os.urandom(70_000))
    os.chmod(ws / "example", 0o755)
    (ws / "same as libz.a").write_bytes((ws / "libz.a").read_bytes())


@pytest.fixture
async def store(nc) -> ArtifactStore:
    s = ArtifactStore(nc)
    await s.ensure_bucket()
    return s


async def test_outputs_stored_on_one_node_are_laid_out_on_another(store, nats_server, tmp_path):
    producer = tmp_path / "node-1" / "g" / "link"
    producer.mkdir(parents=True)
    build(producer)
    own_cache = LocalCache(tmp_path / "node-1" / "cache")
    collected = await collect_outputs(
        producer, ["CMakeFiles/zlib.dir/*.o", "libz.a", "example", "same as libz.a", "*.so"], store, cache=own_cache
    )
    records = collected.records
    assert [r.path for r in records] == [
        "CMakeFiles/zlib.dir/adler32.c.o",
        "CMakeFiles/zlib.dir/crc32.c.o",
        "example",
        "libz.a",
        "same as libz.a",
    ]
    assert collected.empty_globs == ("*.so",) and collected.uploaded == 4  # libz.a's content once
    assert {r.path: r.mode for r in records}["example"] == 0o755 and records[0].mode == 0o644
    assert all(own_cache.has(r.digest) for r in records)  # a dependent on node-1 fetches nothing

    nc2 = await nats.connect(nats_server.url)  # node-2: its own connection, workdir and cache
    try:
        cache2 = LocalCache(tmp_path / "node-2" / "cache")
        consumer = tmp_path / "node-2" / "g" / "test"
        result = await materialize(records, consumer, cache2, ArtifactStore(nc2))
        assert result.linked == 5 and cache2.fetched == 4
        for r in records:
            assert (consumer / r.path).read_bytes() == (producer / r.path).read_bytes()
        assert os.access(consumer / "example", os.X_OK)
        assert stat.S_IMODE((consumer / "libz.a").stat().st_mode) == 0o444

        sent = nc2.stats["out_msgs"]
        second = tmp_path / "node-2" / "g" / "install"
        again = await materialize(records, second, cache2, ArtifactStore(nc2), mode="copy")
        assert again.copied == 5 and cache2.fetched == 4 and nc2.stats["out_msgs"] == sent  # all from the cache
        assert stat.S_IMODE((second / "example").stat().st_mode) == 0o755
    finally:
        await nc2.close()


async def test_a_missing_declared_output_fails_naming_the_path_and_stores_nothing(store, nc, tmp_path):
    build(tmp_path)
    with pytest.raises(OutputMissing) as e:
        await collect_outputs(tmp_path, ["libz.a", "zlib.pc"], store)
    assert e.value.path == "zlib.pc"
    assert (await nc.jetstream().stream_info(S.ARTIFACT_STREAM)).state.messages == 0


async def test_an_output_that_leads_out_is_refused_before_anything_is_stored(store, nc, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    build(ws)
    (tmp_path / "host-secret").write_text("not yours")
    os.symlink(tmp_path / "host-secret", ws / "libz.so")
    for declared in (["libz.a", "libz.so"], ["libz.a", "../host-secret"], ["/etc/passwd"]):
        with pytest.raises(UnsafePath):
            await collect_outputs(ws, declared, store)
    assert (await nc.jetstream().stream_info(S.ARTIFACT_STREAM)).state.messages == 0


async def test_an_output_over_the_limit_names_its_workspace_path(nc, tmp_path):
    store = ArtifactStore(nc, StoreSettings(max_blob_bytes=100_000))
    await store.ensure_bucket()
    build(tmp_path)
    with pytest.raises(BlobTooLarge) as e:
        await collect_outputs(tmp_path, ["libz.a"], store)
    assert e.value.path == "libz.a" and "100,000 bytes" in str(e.value)


async def test_a_layout_path_outside_the_workspace_fetches_nothing(store, nc, tmp_path):
    from schemas.records import ArtifactRecord

    cache = LocalCache(tmp_path / "cache")
    bad = [ArtifactRecord(path="ok", digest="a" * 64), ArtifactRecord(path="../../etc/cron.d/x", digest="b" * 64)]
    sent = nc.stats["out_msgs"]
    with pytest.raises(UnsafePath) as e:
        await materialize(bad, tmp_path / "ws", cache, store)
    assert e.value.path == "../../etc/cron.d/x" and nc.stats["out_msgs"] == sent and cache.fetched == 0

"""The artifact store on a real nats-server: streamed round trips, dedupe, limits, corruption, kills."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.errors import ArtifactStoreFull, BlobCorrupt, BlobNotFound, BlobTooLarge
from node_agent.artifacts.store import ArtifactStore, StoreSettings
from schemas import subjects as S
from tests.conftest import assert_eventually

MiB = 1 << 20


def write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, MiB))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


@pytest.fixture
async def store(nc) -> ArtifactStore:
    s = ArtifactStore(nc)
    await s.ensure_bucket()
    return s


async def stream_messages(nc) -> int:
    return (await nc.jetstream().stream_info(S.ARTIFACT_STREAM)).state.messages


async def test_a_multi_mib_file_round_trips_streamed(store, tmp_path):
    src = tmp_path / "libbig.a"
    digest = write_random(src, 40 * MiB + 123)
    tracemalloc.start()
    try:
        stored = await store.put_file(src)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        size = await store.fetch(digest, tmp_path / "back")
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (stored.digest, stored.size, stored.uploaded) == (digest, 40 * MiB + 123, True)
    assert size == stored.size and (tmp_path / "back").read_bytes() == src.read_bytes()
    # streamed: neither direction ever held the 40 MiB file (chunks in flight and buffered at most)
    assert put_peak < 16 * MiB and get_peak < 16 * MiB, (put_peak, get_peak)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


async def test_the_bucket_is_created_once_with_its_settings(nc):
    capped = StoreSettings(max_bucket_bytes=64 * MiB)
    await asyncio.gather(*(ArtifactStore(nc, capped).ensure_bucket() for _ in range(3)))
    await ArtifactStore(nc).ensure_bucket()  # opens the existing bucket, changes nothing
    info = await nc.jetstream().stream_info(S.ARTIFACT_STREAM)
    assert (info.config.num_replicas, info.config.storage, info.config.max_bytes) == (1, "file", 64 * MiB)


async def test_the_same_content_twice_is_one_object(store, nc, tmp_path):
    (tmp_path / "a.o").write_bytes(b"same bytes" * 1000)
    (tmp_path / "copy of a.o").write_bytes(b"same bytes" * 1000)
    first = await store.put_file(tmp_path / "a.o")
    count = await stream_messages(nc)
    second = await store.put_file(tmp_path / "copy of a.o")
    assert first.digest == second.digest and first.uploaded and not second.uploaded
    assert await stream_messages(nc) == count  # nothing was sent the second time
    assert [b.digest for b in await store.blobs()] == [first.digest]


async def test_an_empty_file_is_a_blob_too(store, tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    stored = await store.put_file(tmp_path / "empty")
    assert stored.digest == hashlib.sha256(b"").hexdigest()
    assert await store.fetch(stored.digest, tmp_path / "back") == 0 and (tmp_path / "back").read_bytes() == b""


async def test_a_file_over_the_limit_is_refused_naming_it_and_the_limit(nc, tmp_path):
    store = ArtifactStore(nc, StoreSettings(max_blob_bytes=MiB))
    await store.ensure_bucket()
    big = tmp_path / "dir with space" / "too big.bin"
    big.parent.mkdir()
    big.write_bytes(b"x" * (MiB + 1))
    with pytest.raises(BlobTooLarge) as e:
        await store.put_file(big)
    assert str(big) in str(e.value) and "1,048,576 bytes" in str(e.value)
    assert (e.value.size, e.value.limit) == (MiB + 1, MiB)
    with pytest.raises(BlobTooLarge, match="out/too big.bin"):
        await store.put_file(big, label="out/too big.bin")
    assert await stream_messages(nc) == 0  # nothing was sent


async def test_a_full_bucket_says_so_and_keeps_what_it_holds(nc, tmp_path):
    store = ArtifactStore(nc, StoreSettings(max_bucket_bytes=MiB))
    await store.ensure_bucket()
    (tmp_path / "small").write_bytes(b"s" * 1000)
    (tmp_path / "big.a").write_bytes(b"b" * 2 * MiB)
    small = await store.put_file(tmp_path / "small")
    with pytest.raises(ArtifactStoreFull, match="bucket is full .*1,048,576 bytes.*artifacts gc") as e:
        await store.put_file(tmp_path / "big.a", label="lib/big.a")
    assert e.value.path == "lib/big.a" and e.value.retryable
    assert [b.digest for b in await store.blobs()] == [small.digest]
    assert await store.fetch(small.digest, tmp_path / "back") == 1000


async def test_content_overwritten_under_its_name_is_a_miss_never_used(store, nc, tmp_path):
    src = tmp_path / "good"
    digest = write_random(src, 3 * MiB)
    await store.put_file(src)
    obs = await nc.jetstream().object_store(S.ARTIFACT_BUCKET)
    await obs.put(digest, b"planted content")  # someone with write access replaces the blob
    dest = tmp_path / "fetched"
    with pytest.raises(BlobCorrupt) as e:
        await store.fetch(digest, dest)
    assert e.value.digest == digest
    assert not dest.exists() and [p for p in tmp_path.iterdir() if p.suffix == ".part"] == []
    assert await store.stat(digest) is None  # withdrawn: the next producer stores it again
    again = await store.put_file(src)
    assert again.uploaded and await store.fetch(digest, dest) == 3 * MiB and dest.read_bytes() == src.read_bytes()


async def test_chunks_that_do_not_match_intact_looking_metadata_are_a_miss(store, nc, tmp_path):
    (tmp_path / "a").write_bytes(b"A" * 300_000)
    (tmp_path / "b").write_bytes(b"B" * 300_000)
    a, b = await store.put_file(tmp_path / "a"), await store.put_file(tmp_path / "b")
    obs = await nc.jetstream().object_store(S.ARTIFACT_BUCKET)
    info_a, info_b = await obs.get_info(a.digest), await obs.get_info(b.digest)
    info_a_nuid = info_a.nuid
    info_a.nuid = info_b.nuid  # a's metadata (its own digest, intact-looking) now points at b's chunks
    meta = f"{S.ARTIFACT_META}.{base64.urlsafe_b64encode(a.digest.encode()).decode()}"
    await nc.jetstream().publish(meta, json.dumps(info_a.as_dict()).encode(), headers={"Nats-Rollup": "sub"})
    assert (await store.stat(a.digest)).intact  # nothing to see in the metadata
    with pytest.raises(BlobCorrupt, match="does not hash to its name"):
        await store.fetch(a.digest, tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists()
    assert await store.stat(a.digest) is None  # withdrawn...
    assert await store.fetch(b.digest, tmp_path / "b") == 300_000  # ...without purging the chunks b still uses
    assert await store.purge_orphans(datetime.now(UTC) + timedelta(days=1), timedelta(hours=1)) == [info_a_nuid]
    assert await store.fetch(b.digest, tmp_path / "b") == 300_000


async def test_a_deleted_blob_is_gone_at_once_and_its_chunks_at_the_next_purge(store, tmp_path):
    for name in ("x", "y"):
        (tmp_path / name).write_bytes(name.encode() * 200_000)
    x, y = await store.put_file(tmp_path / "x"), await store.put_file(tmp_path / "y")
    x_nuid = (await store.stat(x.digest)).nuid
    assert await store.delete(x.digest) and not await store.delete(x.digest)
    assert await store.stat(x.digest) is None and [b.digest for b in await store.blobs()] == [y.digest]
    with pytest.raises(BlobNotFound):
        await store.fetch(x.digest, tmp_path / "back")
    assert len(await store.chunk_subjects()) == 2
    assert await store.purge_orphans(datetime.now(UTC) + timedelta(days=1), timedelta(hours=1)) == [x_nuid]
    assert len(await store.chunk_subjects()) == 1 and await store.fetch(y.digest, tmp_path / "y2") == 200_000
    assert (await store.put_file(tmp_path / "x")).uploaded  # stored again from scratch


async def test_a_stream_that_answers_no_direct_gets_is_read_through_a_consumer(store, nc, tmp_path, caplog):
    src = tmp_path / "src"
    digest = write_random(src, 5 * MiB + 7)
    await store.put_file(src)
    js = nc.jetstream()
    config = (await js.stream_info(S.ARTIFACT_STREAM)).config
    config.allow_direct = False
    await js.update_stream(config)
    with caplog.at_level("INFO", logger="niyantra.artifacts"):
        assert await store.fetch(digest, tmp_path / "back") == 5 * MiB + 7
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
    assert "direct read incomplete" in caplog.text  # the fallback ran, and still verified


async def test_many_blobs_are_looked_up_as_one_by_one_would(store, nc, tmp_path, caplog):
    """stat_many (batched direct gets, 256 subjects a request) says what stat says of each blob:
    present, absent, deleted, replaced under its name; also where the stream answers no direct gets."""
    digests = []
    for i in range(300):
        (tmp_path / f"f{i}").write_bytes(f"file {i}".encode())
        digests.append((await store.put_file(tmp_path / f"f{i}")).digest)
    await store.delete(digests[3])
    obs = await nc.jetstream().object_store(S.ARTIFACT_BUCKET)
    await obs.put(digests[5], b"planted content")
    absent = ["0" * 64, "f" * 64]
    wanted = [*digests, *absent]
    one_by_one = {d: await store.stat(d) for d in wanted}
    assert one_by_one[digests[3]] is None and not one_by_one[digests[5]].intact
    with caplog.at_level("INFO", logger="niyantra.artifacts"):
        assert await store.stat_many(wanted) == one_by_one
        assert "looking each blob up" not in caplog.text  # the batched path answered
        js = nc.jetstream()
        config = (await js.stream_info(S.ARTIFACT_STREAM)).config
        config.allow_direct = False
        await js.update_stream(config)
        assert await store.stat_many(wanted) == one_by_one
        assert "looking each blob up" in caplog.text


async def test_a_blob_not_there_is_not_found(store, tmp_path):
    with pytest.raises(BlobNotFound):
        await store.fetch("0" * 64, tmp_path / "x")
    assert not (tmp_path / "x").exists()


async def test_the_local_cache_fetches_a_blob_once(store, nc, tmp_path):
    src = tmp_path / "lib.a"
    digest = write_random(src, 2 * MiB)
    await store.put_file(src)
    cache = LocalCache(tmp_path / "cache")
    paths = await asyncio.gather(*(cache.ensure(digest, store) for _ in range(5)))
    assert len(set(paths)) == 1 and paths[0].read_bytes() == src.read_bytes() and cache.fetched == 1
    sent, received = nc.stats["out_msgs"], nc.stats["in_msgs"]
    assert await cache.ensure(digest, store) == paths[0]
    assert (nc.stats["out_msgs"], nc.stats["in_msgs"]) == (sent, received)  # the server was not asked
    assert cache.fetched == 1


async def test_a_corrupt_blob_never_enters_the_cache(store, nc, tmp_path):
    (tmp_path / "x").write_bytes(b"x" * 1000)
    digest = (await store.put_file(tmp_path / "x")).digest
    await (await nc.jetstream().object_store(S.ARTIFACT_BUCKET)).put(digest, b"y" * 1000)
    cache = LocalCache(tmp_path / "cache")
    with pytest.raises(BlobCorrupt):
        await cache.ensure(digest, store)
    assert not cache.has(digest) and cache.clear_partials() == 0


UPLOADER = """
import asyncio, sys
import nats
from pathlib import Path
from node_agent.artifacts.store import ArtifactStore, StoreSettings

async def main():
    nc = await nats.connect(sys.argv[1])
    store = ArtifactStore(nc, StoreSettings(chunk_bytes=128 * 1024))
    print("connected", flush=True)
    await store.put_file(Path(sys.argv[2]))
    print("stored", flush=True)

asyncio.run(main())
"""


async def test_an_uploader_killed_mid_put_leaves_no_blob_and_a_fresh_put_succeeds(store, nc, nats_server, tmp_path):
    src = tmp_path / "huge.bin"
    digest = write_random(src, 160 * MiB)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, nats_server.url, str(src)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
    )
    try:
        await assert_eventually(lambda: stream_messages(nc), timeout=60, interval=0.01, message="first chunks")
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL and b"stored" not in out  # killed mid-upload
    chunks = await store.chunk_subjects()
    assert len(chunks) == 1 and await stream_messages(nc) > 0  # some chunks were written...
    assert await store.stat(digest) is None  # ...but no object refers to them
    with pytest.raises(BlobNotFound):
        await store.fetch(digest, tmp_path / "x")
    assert await store.blobs() == []

    fresh = await store.put_file(src)
    assert fresh.uploaded and fresh.size == 160 * MiB
    assert await store.fetch(digest, tmp_path / "back") == 160 * MiB
    assert hashlib.sha256((tmp_path / "back").read_bytes()).hexdigest() == digest

    orphan = chunks[0].rsplit(".", 1)[-1]
    now = datetime.now(UTC)
    assert await store.purge_orphans(now, timedelta(hours=1)) == []  # within the grace: maybe still uploading
    assert await store.purge_orphans(now + timedelta(hours=2), timedelta(hours=1)) == [orphan]
    assert await store.chunk_subjects() == [f"{S.ARTIFACT_CHUNKS}.{(await store.stat(digest)).nuid}"]
    assert await store.fetch(digest, tmp_path / "back2") == 160 * MiB

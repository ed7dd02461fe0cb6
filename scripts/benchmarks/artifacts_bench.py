"""Artifact store benchmark (see scripts/bench_artifacts). Prints JSON.

On one nats-server started from the repository's nats.conf (file storage, ``sync_interval:
always``, max_payload 8 MB), for each size (default 1 MiB and 100 MiB), ``--repeats`` times
with fresh random content: ``put`` (`ArtifactStore.put_file`: hash pass + upload), the same
put again (deduplicated: nothing sent), ``get`` (`ArtifactStore.fetch`: batched direct gets into
a file, verified), nats-py's ``get(writeinto=)`` (the consumer path the store falls back to), and
a local-cache hit. Medians; MB = 10^6 bytes. ``--memory-get`` adds nats-py's ``get()`` into
memory (nats-py issue #703) once per size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nats  # noqa: E402

from node_agent.artifacts.cache import LocalCache  # noqa: E402
from node_agent.artifacts.store import ArtifactStore, StoreSettings  # noqa: E402
from orchestrator.runtime.natsserver import default_config, server_args, start_server  # noqa: E402
from schemas import subjects as S  # noqa: E402

MiB = 1 << 20


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(os.urandom(n))
            left -= n


async def timed(coro: Any) -> float:
    t = time.perf_counter()
    await coro
    return time.perf_counter() - t


async def one_round(store: ArtifactStore, obs: Any, tmp: Path, size: int, memory_get: bool) -> dict[str, float]:
    src = tmp / "src"
    write_random(src, size)
    t = time.perf_counter()
    stored = await store.put_file(src)
    put_s = time.perf_counter() - t
    assert stored.uploaded
    dedupe_s = await timed(store.put_file(src))
    get_s = await timed(store.fetch(stored.digest, tmp / "back"))
    assert (tmp / "back").stat().st_size == size
    with open(tmp / "back2", "wb") as f:
        nats_py_s = await timed(obs.get(stored.digest, writeinto=f))
    cache = LocalCache(tmp / "cache")
    await cache.ensure(stored.digest, store)
    hit_s = await timed(cache.ensure(stored.digest, store))
    out = {"put_s": put_s, "dedupe_put_s": dedupe_s, "get_s": get_s, "nats_py_writeinto_s": nats_py_s, "hit_s": hit_s}
    if memory_get:
        out["nats_py_memory_s"] = await timed(obs.get(stored.digest))
    for p in (src, tmp / "back", tmp / "back2"):
        p.unlink()
    await store.delete(stored.digest)
    return out


def summary(size: int, rounds: list[dict[str, float]]) -> dict[str, Any]:
    med = {k: statistics.median(r[k] for r in rounds if k in r) for k in rounds[0]}
    mb = size / 1e6
    row: dict[str, Any] = {
        "size_mib": size / MiB,
        "put_mb_s": round(mb / med["put_s"], 1),
        "get_mb_s": round(mb / med["get_s"], 1),
        "nats_py_writeinto_get_mb_s": round(mb / med["nats_py_writeinto_s"], 1),
        "put_s": round(med["put_s"], 4),
        "get_s": round(med["get_s"], 4),
        "dedupe_put_s": round(med["dedupe_put_s"], 4),
        "cache_hit_ms": round(med["hit_s"] * 1000, 3),
    }
    if "nats_py_memory_s" in med:
        row["nats_py_memory_get_s"] = round(med["nats_py_memory_s"], 3)
    return row


async def run(url: str, tmp: Path, sizes: list[int], repeats: int, memory_get: bool) -> list[dict[str, Any]]:
    nc = await nats.connect(url)
    try:
        store = ArtifactStore(nc)
        await store.ensure_bucket()
        obs = await nc.jetstream().object_store(S.ARTIFACT_BUCKET)
        rows = []
        for size in sizes:
            rounds = [await one_round(store, obs, tmp, size, memory_get and i == 0) for i in range(repeats)]
            rows.append(summary(size, rounds))
            await store.purge_orphans(datetime.now(UTC), timedelta(0))  # the deleted rounds' chunks
        return rows
    finally:
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mib", type=float, nargs="+", default=[1, 100])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-get", action="store_true", help="also time nats-py's get() into memory")
    a = ap.parse_args()
    sizes = [int(s * MiB) for s in a.sizes_mib]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = start_server(
            server_args(config=default_config(), port=-1, http_port=None, store_dir=tmp / "js"),
            tmp / "nats.log",
            store_dir=tmp / "js",
        )
        try:
            rows = asyncio.run(run(server.url, tmp, sizes, a.repeats, a.memory_get))
        finally:
            server.stop()
    report = {
        "benchmark": "artifacts",
        "server": "nats.conf (file storage, sync_interval: always)",
        "chunk_bytes": StoreSettings().chunk_bytes,
        "repeats": a.repeats,
        "mb": "10^6 bytes",
        "results": rows,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

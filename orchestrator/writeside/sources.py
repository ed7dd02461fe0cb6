"""Storing a graph's source tree at submit, before the graph is accepted.

Every task's agent lays the source out from the artifact store (`node_agent.artifacts.stage`), so
the blobs must be there before any event names them: `store_source` puts each file's content
into the store once per digest (a blob already there, intact and of the recorded size, is not
sent again: all are looked up first, by batched direct gets, and only the rest uploaded), then the
manifest itself as a blob named by the manifest's digest (`schemas.codec.manifest_digest`, which
is the SHA-256 of exactly the bytes stored), and only then does the caller append
`GraphSubmitted`. A file that changed since it was hashed is refused (`FileChanged`, naming it)
and nothing is appended; a submit killed half-way leaves blobs no event refers to (`gc` takes
them), never an event that refers to a missing blob.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_agent.artifacts.store import ArtifactStore
from orchestrator.graphs.validation import GraphSpec
from schemas.codec import encode_manifest
from schemas.records import SourceManifest

UPLOAD_CONCURRENCY = 8


@dataclass(frozen=True)
class SourceStored:
    """What storing a graph's source did: distinct blobs (the manifest included), and how many were sent."""

    blobs: int = 0
    uploaded: int = 0
    bytes_sent: int = 0


async def store_source(nc: Any, spec: GraphSpec, store: ArtifactStore | None = None) -> SourceStored:
    """Put every source blob of ``spec`` and its manifest into the artifact store (see the module docstring)."""
    if not spec.source_tree:
        return SourceStored()
    store = store or ArtifactStore(nc)
    await store.ensure_bucket()
    first: dict[str, str] = {}  # digest -> the first workspace path with that content
    sizes: dict[str, int] = {}
    for record in spec.source_files:
        first.setdefault(record.digest, record.path)
        sizes.setdefault(record.digest, record.size)
    infos = await store.stat_many(first)
    have = {d for d, info in infos.items() if info is not None and info.intact and info.size == sizes[d]}
    gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)

    async def put(digest: str, path: str) -> tuple[bool, int]:
        origin = spec.source_origins.get(path)
        if origin is None:
            raise ValueError(f"source file {path!r} of graph {spec.id} has no file to read (hash the source first)")
        async with gate:
            stored = await store.put_file(Path(origin), digest=digest, label=f"source file {path} ({origin})")
        return stored.uploaded, stored.size if stored.uploaded else 0

    results = [(False, 0)] * len(have)  # an intact copy of the same size is there: not sent again
    results += await asyncio.gather(*(put(d, p) for d, p in sorted(first.items()) if d not in have))
    manifest = await _put_manifest(store, spec)
    sent = [*results, manifest]
    return SourceStored(len(sent), sum(u for u, _ in sent), sum(n for _, n in sent))


async def _put_manifest(store: ArtifactStore, spec: GraphSpec) -> tuple[bool, int]:
    data = encode_manifest(SourceManifest(files=spec.source_files))
    fd, tmp = tempfile.mkstemp(prefix="niyantra-manifest.", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        stored = await store.put_file(Path(tmp), digest=spec.source_tree, label=f"source manifest of graph {spec.id}")
    finally:
        Path(tmp).unlink(missing_ok=True)
    return stored.uploaded, stored.size if stored.uploaded else 0


def store_source_sync(url: str, spec: GraphSpec) -> SourceStored:
    """`store_source` on its own connection (for the command line and the Python API)."""
    from orchestrator.runtime.connection import connect

    async def go() -> SourceStored:
        nc = await connect(url, name="niyantra-submit")
        try:
            return await store_source(nc, spec)
        finally:
            await nc.close()

    return asyncio.run(go()) if spec.source_tree else SourceStored()

"""Before a task runs: lay out its inputs in its workspace from the artifact store, through the local cache.

What a dispatch names (`schemas.events.TaskDispatched`) is laid out, all of it or the task does
not run:

- the graph's source tree: ``source_tree`` is the digest of its manifest, itself a blob in the
  store (stored at submit by `orchestrator.writeside.sources`), so fetching it through the cache
  verifies it like any blob; its files go at their paths;
- ``dep_outputs``: the stored outputs of the task's dependencies, at the paths they were
  collected from in their producers' workspaces (on whatever node those ran).

Every blob is fetched at most once per node (`LocalCache`) and verified on the way in (its
content must hash to its name); one that does not is never laid out: `InputUnavailable` names the
workspace path and the digest, and the task fails without running (the store withdraws the bad
copy, so a producer that runs again stores it afresh). Paths are checked before anything is
fetched (`layout.plan_layout`: absolute, ``..`` and symlinks out are refused).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from node_agent.artifacts.cache import BlobSource, LocalCache
from node_agent.artifacts.errors import ArtifactError, InputUnavailable
from node_agent.artifacts.layout import LayoutResult, LinkMode, Placement, check_layout, lay_out, plan_layout
from schemas.records import ArtifactRecord, SourceManifest

FETCH_CONCURRENCY = 4
_manifest = msgspec.json.Decoder(SourceManifest)


@dataclass(frozen=True)
class Staged:
    """What staging did: files laid out (linked, copied, already there) and blobs fetched from the store."""

    files: int = 0
    fetched: int = 0
    layout: LayoutResult = LayoutResult()
    fetched_bytes: int = 0  # of the planned blobs the cache lacked when staging began
    fetch_seconds: float = 0.0  # wall time bringing them in (what the node's transfer rate is learned from)


async def load_manifest(digest: str, cache: LocalCache, source: BlobSource) -> SourceManifest:
    """The source manifest stored under ``digest`` (fetched once and verified by the cache)."""
    try:
        path = await cache.ensure(digest, source)
    except ArtifactError as e:
        raise InputUnavailable("the graph's source manifest", digest, str(e), e.retryable) from e
    try:
        return _manifest.decode(await asyncio.to_thread(path.read_bytes))
    except msgspec.DecodeError as e:
        raise InputUnavailable("the graph's source manifest", digest, f"not a source manifest: {e}", False) from e


async def fetch_all(plan: Sequence[Placement], cache: LocalCache, source: BlobSource) -> int:
    """Bring every planned blob into the cache (each digest once); the first failure, by path, names its path."""
    first: dict[str, str] = {}
    for place in plan:
        first.setdefault(place.digest, place.path)
    before = cache.fetched
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def need(digest: str) -> None:
        async with gate:
            await cache.ensure(digest, source)

    digests = sorted(first)
    results = await asyncio.gather(*(need(d) for d in digests), return_exceptions=True)
    failed = sorted((first[d], d, r) for d, r in zip(digests, results, strict=True) if isinstance(r, BaseException))
    for path, digest, error in failed:
        if isinstance(error, ArtifactError):
            raise InputUnavailable(path, digest, str(error), error.retryable) from error
        raise error
    return cache.fetched - before


async def stage(
    workspace: Path,
    source_tree: str,
    dep_outputs: Sequence[ArtifactRecord],
    cache: LocalCache,
    source: BlobSource,
    *,
    mode: LinkMode = "hardlink",
) -> Staged:
    """Lay out the source tree and the dependencies' outputs in ``workspace`` (see the module docstring)."""
    entries: list[ArtifactRecord] = []
    fetched = 0
    if source_tree:
        before = cache.fetched
        entries += (await load_manifest(source_tree, cache, source)).files
        fetched = cache.fetched - before
    entries += dep_outputs
    if not entries:
        return Staged(fetched=fetched)
    plan = plan_layout(entries)
    check_layout(plan, workspace)
    size = {e.digest: e.size for e in entries}
    lacking = sum(size.get(d, 0) for d in {p.digest for p in plan} if not cache.has(d))
    began = time.monotonic()
    fetched += await fetch_all(plan, cache, source)
    took = time.monotonic() - began if lacking else 0.0
    result = await asyncio.to_thread(lay_out, plan, workspace, cache, mode=mode)
    return Staged(len(plan), fetched, result, fetched_bytes=lacking, fetch_seconds=round(took, 6))

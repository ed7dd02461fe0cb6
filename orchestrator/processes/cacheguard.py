"""The decider's check of a cache hit before it is appended: every reused blob is in the store.

`decide` is pure and cannot see the artifact store, so the shell looks at each hit's outputs in
the Object Store (their metadata: present, named by their content's SHA-256, the recorded size)
before appending it. A hit whose blob is missing or does not verify is not appended; the shell
appends a `CacheEntryRevoked` instead (logged), so the entry is never used again and the next
round dispatches the task with ``cache_miss`` saying the entry was revoked. The content itself is
verified again by the agent that downloads it (`node_agent.artifacts.store.ArtifactStore.fetch`).
A store the decider cannot reach drops the round's hits (they are decided again next round).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from orchestrator.decision.decide import Dispatch
from schemas.events import CacheEntryRevoked, TaskCacheHit
from schemas.records import ArtifactRecord
from schemas.subjects import domain_token

log = logging.getLogger("niyantra.decider")


def _problem(o: ArtifactRecord, info: Any) -> str:
    if info is None:
        return f"{o.path} (sha256:{o.digest[:12]}) is missing from the artifact store"
    if not info.intact:
        return f"{o.path} (sha256:{o.digest[:12]}) does not verify: its metadata names other content"
    if info.size != o.size:
        return f"{o.path} (sha256:{o.digest[:12]}) does not verify: {info.size} bytes stored, {o.size} recorded"
    return ""


def revocation(hit: TaskCacheHit, problems: list[tuple[str, str]], now: datetime) -> CacheEntryRevoked:
    """The event that revokes the entry ``hit`` would have reused (pure; deterministic id: one per entry)."""
    return CacheEntryRevoked(
        event_id=f"revoke:{domain_token(hit.domain)}:{hit.key}",
        occurred_at=now,
        causation_id=hit.event_id,
        correlation_id=hit.graph_id,
        domain=hit.domain,
        key=hit.key,
        reason="; ".join(p for _, p in problems),
        missing=tuple(d for d, _ in problems),
        graph_id=hit.graph_id,
        task_id=hit.task_id,
    )


async def verify_hits(
    decisions: list[Dispatch], store: Any, now: datetime
) -> tuple[list[Dispatch], list[CacheEntryRevoked]]:
    """The decisions to append (dispatches, and the hits whose blobs all verify) and the revocations.

    ``store`` is an `ArtifactStore`: every digest of the round's hits is looked up once, all of
    them together (`ArtifactStore.stat_many`: a round of forty hits is one request, not forty).
    """
    from node_agent.artifacts.errors import ArtifactStoreUnavailable

    hits = [d.event for d in decisions if isinstance(d.event, TaskCacheHit)]
    try:
        seen = await store.stat_many({o.digest for hit in hits for o in hit.outputs}) if hits else {}
    except ArtifactStoreUnavailable as e:
        log.warning("%d cache hit(s) not appended this round: %s", len(hits), e)
        return [d for d in decisions if not isinstance(d.event, TaskCacheHit)], []
    keep: list[Dispatch] = []
    revoked: list[CacheEntryRevoked] = []
    for d in decisions:
        hit = d.event
        if not isinstance(hit, TaskCacheHit):
            keep.append(d)
            continue
        problems = [(o.digest, why) for o in hit.outputs if (why := _problem(o, seen[o.digest]))]
        if problems:
            log.warning("cache entry %s revoked (%s/%s): %s", hit.key[:12], hit.graph_id, hit.task_id, problems)
            revoked.append(revocation(hit, problems, now))
        else:
            keep.append(d)
    return keep, revoked

"""What the artifact store knows of one blob: its info as the bucket's metadata describes it, and
the two spellings of its SHA-256 (ours, hex; nats-py's, ``SHA-256=<urlsafe base64>``). Pure."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nats.js.api import ObjectInfo

from node_agent.artifacts.digest import is_digest

_DIGEST_PREFIX = "SHA-256="


@dataclass(frozen=True)
class BlobInfo:
    """One object of the bucket as its metadata describes it."""

    digest: str
    size: int
    mtime: datetime | None
    nuid: str
    intact: bool  # its metadata's SHA-256 is its name (a replaced or foreign object is not)
    chunks: int = 0


def nats_digest(hex_digest: str) -> str:
    """nats-py's spelling of a SHA-256 (``SHA-256=<urlsafe base64>``) for a hex digest."""
    return _DIGEST_PREFIX + base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).decode()


def hex_of(nats_spelling: str | None) -> str:
    """The hex digest of nats-py's ``SHA-256=...`` spelling ('' when it is not one)."""
    raw = (nats_spelling or "").removeprefix(_DIGEST_PREFIX).removeprefix(_DIGEST_PREFIX.upper())
    try:
        return base64.urlsafe_b64decode(raw).hex() if raw else ""
    except ValueError:
        return ""


def blob_info(info: ObjectInfo) -> BlobInfo:
    """Our view of nats-py's object metadata."""
    try:
        mtime = datetime.fromisoformat(info.mtime) if info.mtime else None
    except ValueError:
        mtime = None
    intact = is_digest(info.name) and hex_of(info.digest) == info.name
    return BlobInfo(info.name, info.size or 0, mtime, info.nuid or "", intact, info.chunks or 0)


def meta_info(digest: str, data: bytes | None) -> BlobInfo | None:
    """A blob's metadata message as `ArtifactStore.stat` reads it (None: absent or deleted)."""
    if data is None:
        return None
    try:
        info = ObjectInfo.from_response(json.loads(data))
    except Exception:  # noqa: BLE001 -- unreadable metadata is a corrupt blob, as get_info says
        return BlobInfo(digest, 0, None, "", intact=False)
    return None if info.deleted else blob_info(info)


def orphan_nuids(chunk_subjects: Iterable[str], live_nuids: Iterable[str]) -> list[str]:
    """Pure: the chunk ids (nuids) under ``$O.<bucket>.C.`` that no object's metadata names."""
    live = set(live_nuids)
    nuids = {s.rsplit(".", 1)[-1] for s in chunk_subjects}
    return sorted(nuids - live)

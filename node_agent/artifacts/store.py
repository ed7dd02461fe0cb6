"""The artifact store: blobs in a JetStream Object Store bucket, each named by its content's SHA-256.

- **Stored once.** A blob's name is the hex SHA-256 of its content, so the same file produced by
  many tasks is one object; `ArtifactStore.put_file` hashes the file first (a streamed pass) and
  uploads only when no intact object of that name exists.
- **Streamed both ways.** Uploads read the file in chunks through nats-py's ``put`` (never the
  whole file in memory); downloads read the chunks by batched direct gets (`chunks.read_chunks`,
  ~0.3 s for 100 MiB) into a temporary file beside the destination, renamed into place when whole,
  falling back to nats-py's ``get(writeinto=...)`` (2.0 s) when the stream answers with fewer
  chunks than the metadata counts (``get()`` into memory concatenates bytes: 15.5 s, nats-py #703).
- **Verified.** What moves is hashed as it moves: an upload whose content no longer hashes to the
  name computed before (the file changed) is withdrawn, and a download that does not hash to its
  name is a miss (`BlobCorrupt`, logged), its partial file deleted, never renamed into place. A
  corrupt blob is also withdrawn from the store, so the next producer of that content uploads it
  again instead of deduplicating against it.
- **Never half there.** nats-py writes an object's chunks first and its metadata message last, and
  an object exists only through its metadata: an uploader killed mid-put leaves chunks that no
  name refers to (`ArtifactStore.purge_orphans` removes them once they are older than a grace
  period), and the next put of that content starts afresh (tests/integration/test_artifact_store.py).
- **Sized.** A blob over ``max_blob_bytes`` is refused before anything is sent (`BlobTooLarge`
  names the file and the limit); the bucket's total may be capped too (``max_bucket_bytes``).
- **Replicated** like the EVENTS stream: ``replicas`` defaults to ``NIYANTRA_REPLICAS``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import nats.errors
import nats.js.errors
from nats.js.api import Header, ObjectMeta, ObjectMetaOptions, ObjectStoreConfig, StorageType

from node_agent.artifacts.blobinfo import BlobInfo, blob_info, meta_info, orphan_nuids
from node_agent.artifacts.chunks import Incomplete, read_chunks
from node_agent.artifacts.digest import HashingReader, HashingWriter, hash_file
from node_agent.artifacts.errors import (
    ArtifactStoreFull,
    ArtifactStoreUnavailable,
    BlobCorrupt,
    BlobNotFound,
    BlobTooLarge,
    FileChanged,
)
from node_agent.artifacts.lastmsgs import Unanswered, last_messages
from orchestrator.runtime.connection import replicas as default_replicas
from schemas import subjects as S

log = logging.getLogger("niyantra.artifacts")

DEFAULT_MAX_BLOB_BYTES = 1 << 30
DEFAULT_CHUNK_BYTES = 512 * 1024  # fewer, larger chunks: fewer fsynced writes per MiB (scripts/bench_artifacts)
_NATS_ERRORS = (nats.errors.Error, OSError, TimeoutError)
_ERR_STREAM_EXISTS = 10058


@dataclass(frozen=True)
class StoreSettings:
    """How the artifact bucket is made and used."""

    bucket: str = S.ARTIFACT_BUCKET
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    max_bucket_bytes: int | None = None
    replicas: int | None = None  # None: NIYANTRA_REPLICAS, as for the EVENTS stream
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    timeout_s: float = 30.0
    min_rate_bytes_s: float = 4 * 1024 * 1024

    def deadline_s(self, size: int) -> float:
        """How long one transfer of ``size`` bytes may take before it counts as lost."""
        return self.timeout_s + size / self.min_rate_bytes_s


@dataclass(frozen=True)
class Stored:
    """The outcome of storing one file."""

    digest: str
    size: int
    uploaded: bool  # False: an intact blob of that content was already there


class ArtifactStore:
    """Put, fetch, list and delete content-addressed blobs in the artifact bucket."""

    def __init__(self, nc: Any, settings: StoreSettings | None = None) -> None:
        self.settings = settings or StoreSettings()
        self._nc = nc
        self._js = nc.jetstream()
        self._obs: Any = None
        self.stream = f"OBJ_{self.settings.bucket}"

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (idempotent; a concurrent create is fine)."""
        try:
            self._obs = await self._js.object_store(self.settings.bucket)
            return
        except nats.js.errors.BucketNotFoundError:
            pass
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot reach the artifact bucket {self.settings.bucket}: {e!r}") from e
        config = ObjectStoreConfig(
            description="niyantra build artifacts, named by the SHA-256 of their content",
            storage=StorageType.FILE,
            replicas=self.settings.replicas or default_replicas(),
            max_bytes=self.settings.max_bucket_bytes,
        )
        try:
            self._obs = await self._js.create_object_store(self.settings.bucket, config=config)
        except nats.js.errors.BadRequestError as e:
            if getattr(e, "err_code", None) != _ERR_STREAM_EXISTS:  # created meanwhile by another process
                raise ArtifactStoreUnavailable(f"cannot create the artifact bucket {self.settings.bucket}: {e}") from e
            self._obs = await self._js.object_store(self.settings.bucket)
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot create the artifact bucket {self.settings.bucket}: {e!r}") from e

    async def _bucket(self) -> Any:
        if self._obs is None:
            try:
                self._obs = await self._js.object_store(self.settings.bucket)
            except nats.js.errors.BucketNotFoundError as e:
                raise ArtifactStoreUnavailable(f"there is no artifact bucket {self.settings.bucket} yet") from e
            except _NATS_ERRORS as e:
                raise ArtifactStoreUnavailable(f"cannot reach the artifact bucket: {e!r}") from e
        return self._obs

    async def stat(self, digest: str) -> BlobInfo | None:
        """The blob's metadata, or None when there is no such object."""
        obs = await self._bucket()
        try:
            return blob_info(await obs.get_info(digest))
        except nats.js.errors.NotFoundError:
            return None
        except nats.js.errors.BadObjectMetaError:
            return BlobInfo(digest, 0, None, "", intact=False)
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot read the metadata of sha256:{digest}: {e!r}") from e

    async def stat_many(self, digests: Iterable[str]) -> dict[str, BlobInfo | None]:
        """`stat` of many blobs: their metadata messages by batched direct gets (`lastmsgs`: one round
        trip per 256), or one look-up each (64 at a time) where the stream cannot answer those."""
        subjects = {self._meta_subject(d): d for d in sorted(set(digests))}
        try:
            found = await last_messages(self._nc, self.stream, subjects, timeout_s=self.settings.timeout_s)
        except Unanswered as e:
            log.info("artifact metadata by batched direct get: %s; looking each blob up", e)
            gate = asyncio.Semaphore(64)

            async def one(digest: str) -> BlobInfo | None:
                async with gate:
                    return await self.stat(digest)

            wanted = list(subjects.values())
            return dict(zip(wanted, await asyncio.gather(*map(one, wanted)), strict=True))
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot read the artifact metadata: {e!r}") from e
        return {d: meta_info(d, found.get(subject)) for subject, d in subjects.items()}

    def _meta_subject(self, digest: str) -> str:
        return f"$O.{self.settings.bucket}.M.{base64.urlsafe_b64encode(digest.encode()).decode()}"

    async def put_file(self, path: Path, *, digest: str | None = None, label: str = "") -> Stored:
        """Store the file at ``path`` under the SHA-256 of its content, unless an intact copy is there.

        ``digest`` may be given when the caller already hashed the file (it is checked on upload);
        ``label`` names the file in errors (default: ``path``), e.g. its path in a workspace.
        """
        name, limit = label or str(path), self.settings.max_blob_bytes
        size = os.stat(path).st_size
        if size > limit:
            raise BlobTooLarge(name, size, limit)
        if digest is None:
            hashed, size = await asyncio.to_thread(hash_file, str(path), limit, name)
            return await self._store(path, name, hashed, size)
        return await self._store(path, name, digest, size)

    async def _store(self, path: Path, name: str, digest: str, size: int) -> Stored:
        existing = await self.stat(digest)
        if existing is not None and existing.intact and existing.size == size:
            return Stored(digest, size, uploaded=False)
        if existing is not None:  # not what its name says: withdraw it first, so put never replaces
            await self.delete(digest)  # (replacing purges the old chunks: a right agents lack)
        sent = await self._upload(path, name, digest, size)
        return Stored(digest, sent, uploaded=True)

    async def _upload(self, path: Path, name: str, digest: str, size: int) -> int:
        obs = await self._bucket()
        meta = ObjectMeta(name=digest, options=ObjectMetaOptions(max_chunk_size=self._chunk_bytes()))
        with open(path, "rb") as f:
            reader = HashingReader(f, name, self.settings.max_blob_bytes)
            try:
                await asyncio.wait_for(obs.put(digest, reader, meta=meta), self.settings.deadline_s(size))
            except nats.js.errors.APIError as e:
                if getattr(e, "err_code", None) == S.ERR_MAX_BYTES:
                    raise ArtifactStoreFull(name, self.settings.max_bucket_bytes) from e
                raise ArtifactStoreUnavailable(f"cannot store {name} as sha256:{digest}: {e!r}") from e
            except _NATS_ERRORS as e:
                raise ArtifactStoreUnavailable(f"cannot store {name} as sha256:{digest}: {e!r}") from e
        if reader.hexdigest() != digest:
            await self._withdraw(digest)
            raise FileChanged(name, digest, reader.hexdigest())
        return reader.size

    def _chunk_bytes(self) -> int:
        max_payload = int(getattr(self._nc, "max_payload", 0) or 0)
        return min(self.settings.chunk_bytes, max_payload) if max_payload > 0 else self.settings.chunk_bytes

    async def fetch(self, digest: str, dest: Path) -> int:
        """Download the blob into ``dest`` (whole or not at all) and return its size.

        Raises `BlobNotFound`, `BlobCorrupt` (a miss: logged, the partial file deleted, the bad blob
        withdrawn from the store) or `ArtifactStoreUnavailable`.
        """
        info = await self.stat(digest)
        if info is None:
            raise BlobNotFound(digest)
        if not info.intact:
            await self._corrupt(digest, "", "its metadata names other content", info.nuid)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                writer = await self._download(info, f)
            if writer.hexdigest() != digest:
                await self._corrupt(digest, writer.hexdigest(), "its content does not hash to its name", info.nuid)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return writer.size

    async def _download(self, info: BlobInfo, f: BinaryIO) -> HashingWriter:
        """Read the chunks by batched direct gets; if the stream has fewer than the metadata counts
        (a lagging replica answered, the object was replaced), start again through nats-py's get."""
        writer = HashingWriter(f)
        subject = f"$O.{self.settings.bucket}.C.{info.nuid}"
        try:
            await read_chunks(
                self._nc, self.stream, subject, writer.write, chunks=info.chunks, idle_timeout_s=self.settings.timeout_s
            )
            return writer
        except Incomplete as e:
            log.info("artifact sha256:%s: direct read incomplete (%s); reading it through a consumer", info.digest, e)
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot fetch sha256:{info.digest}: {e!r}") from e
        f.seek(0)
        f.truncate()
        writer = HashingWriter(f)
        await self._get_into(info.digest, writer, info)
        return writer

    async def _get_into(self, digest: str, writer: HashingWriter, info: BlobInfo) -> None:
        obs = await self._bucket()
        try:
            await asyncio.wait_for(obs.get(digest, writeinto=writer), self.settings.deadline_s(info.size))
        except nats.js.errors.DigestMismatchError:
            await self._corrupt(digest, writer.hexdigest(), "its chunks do not match its metadata", info.nuid)
        except nats.js.errors.NotFoundError as e:  # deleted between the look-up and the download
            raise BlobNotFound(digest) from e
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot fetch sha256:{digest}: {e!r}") from e

    async def _corrupt(self, digest: str, actual: str, why: str, nuid: str) -> None:
        log.warning("artifact sha256:%s is corrupt (%s): a miss, not used", digest, why)
        await self._withdraw(digest, nuid)
        raise BlobCorrupt(digest, actual, why)

    async def _withdraw(self, digest: str, bad_nuid: str = "") -> None:
        """Delete a blob that is not what its name says, so the next producer stores it again: one whose
        metadata names other content, or the very copy (``bad_nuid``) whose chunks did not verify (a
        copy stored again meanwhile is left alone)."""
        info = await self.stat(digest)
        if info is None or info.intact and info.nuid != bad_nuid:
            return
        try:
            await self.delete(digest)
        except ArtifactStoreUnavailable as e:  # a role without purge rights: the marker may be in, the chunks stay
            log.warning("could not withdraw corrupt sha256:%s: %s", digest, e)

    async def delete(self, digest: str) -> bool:
        """Remove a blob: its metadata becomes a deletion marker (as nats-py's ``delete`` writes it);
        False if absent. Its chunks are left to `purge_orphans`, which purges only chunks no live
        object names: nats-py's own ``delete`` purges the chunks its metadata points at, and a
        replaced metadata message may point at another blob's chunks."""
        obs = await self._bucket()
        marker: dict[str, Any] = {"name": digest, "bucket": self.settings.bucket, "nuid": "", "deleted": True}
        try:
            info = await obs.get_info(digest)
            info.deleted, info.size, info.chunks, info.digest, info.mtime = True, 0, 0, "", ""
            marker = info.as_dict()
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.BadObjectMetaError:  # unreadable metadata: the marker replaces it
            pass
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot read the metadata of sha256:{digest}: {e!r}") from e
        try:
            await self._js.publish(
                self._meta_subject(digest), json.dumps(marker).encode(), headers={Header.ROLLUP: "sub"}
            )
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot delete sha256:{digest}: {e!r}") from e
        return True

    async def blobs(self) -> list[BlobInfo]:
        """Every object in the bucket (deleted ones left out), by digest."""
        obs = await self._bucket()
        try:
            infos = await obs.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            return []
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot list the artifact bucket: {e!r}") from e
        return sorted((blob_info(i) for i in infos if not i.deleted), key=lambda b: b.digest)

    async def chunk_subjects(self) -> list[str]:
        """The chunk subjects in the bucket's stream (one per object, plus those of killed uploads)."""
        try:
            info = await self._js.stream_info(self.stream, subjects_filter=f"$O.{self.settings.bucket}.C.>")
        except _NATS_ERRORS as e:
            raise ArtifactStoreUnavailable(f"cannot read the stream {self.stream}: {e!r}") from e
        return sorted(info.state.subjects or {})

    async def purge_orphans(self, now: datetime, min_age: timedelta) -> list[str]:
        """Purge chunks no object names (a killed or failed upload) whose last chunk is older than ``min_age``.

        The grace keeps an upload in progress: its chunks are written before its metadata.
        Returns the purged nuids.
        """
        live = [b.nuid for b in await self.blobs()]
        purged = []
        for nuid in orphan_nuids(await self.chunk_subjects(), live):
            subject = f"$O.{self.settings.bucket}.C.{nuid}"
            try:
                last = await self._js.get_last_msg(self.stream, subject)
                if last.time is not None and now - last.time < min_age:
                    continue
                await self._js.purge_stream(self.stream, subject=subject)
            except nats.js.errors.NotFoundError:  # purged meanwhile by another gc
                continue
            except _NATS_ERRORS as e:
                raise ArtifactStoreUnavailable(f"cannot purge the orphan chunks {subject}: {e!r}") from e
            purged.append(nuid)
        return purged

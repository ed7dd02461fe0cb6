"""Where an instance's archive is: published by its archive projector, found by the read commands.

The archive projector puts an `ArchiveLocation` (its folder, absolute, and its host) under the key
``archive`` of the KV bucket ``KV_INSTANCE`` when it starts. A read command (`niyantra query`,
`niyantra metrics`) picks its folder with `choose_archive`: a folder the user names wins
(``--archive-dir``/``NIYANTRA_ARCHIVE_DIR``, then ``--data-dir``/``NIYANTRA_DATA_DIR`` + ``/archive``),
else the one the instance it reaches over NATS published, else ``.niyantra/archive`` (where
``niyantra up`` without ``--data-dir`` archives). See docs/archive.md.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType

from orchestrator.runtime.connection import replicas as default_replicas
from schemas import codec
from schemas import subjects as S
from schemas.instance import ArchiveLocation

DEFAULT_ARCHIVE = Path(".niyantra/archive")
HINT = (
    "name the archive with --archive-dir DIR (or NIYANTRA_ARCHIVE_DIR), or the instance's data folder"
    " with --data-dir DIR (or NIYANTRA_DATA_DIR)"
)


@dataclass(frozen=True)
class ArchiveChoice:
    """The folder a read command reads, how it was chosen (for messages), and, when the instance
    published it from another machine, that host (the folder is not readable here)."""

    directory: Path
    how: str
    elsewhere: str | None = None


def choose_archive(
    archive_dir: Path | None, data_dir: Path | None, published: ArchiveLocation | None, here: str
) -> ArchiveChoice:
    """The archive folder to read (pure): named by the user, else published by the instance, else the default."""
    if archive_dir is not None:
        return ArchiveChoice(archive_dir, "--archive-dir")
    if data_dir is not None:
        return ArchiveChoice(data_dir / "archive", "--data-dir")
    if published is not None:
        elsewhere = None if published.host == here else published.host
        return ArchiveChoice(Path(published.directory), "published by the instance", elsewhere)
    return ArchiveChoice(DEFAULT_ARCHIVE, "the default")


def has_files(directory: Path) -> bool:
    """Whether the archive folder holds at least one Parquet file of events."""
    return directory.is_dir() and next(directory.glob("day=*/events-*.parquet"), None) is not None


async def _bucket(nc: Any, *, create: bool, replicas: int | None = None) -> Any:
    js = nc.jetstream()
    try:
        return await js.key_value(S.KV_INSTANCE)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
        if not create:
            return None
    config = KeyValueConfig(
        bucket=S.KV_INSTANCE, history=1, storage=StorageType.FILE, replicas=replicas or default_replicas()
    )
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError:
        return await js.key_value(S.KV_INSTANCE)  # created concurrently: it exists, which is all we need


async def ensure_instance_bucket(nc: Any, *, replicas: int | None = None) -> None:
    """Create the ``KV_INSTANCE`` bucket if missing (`niyantra up` does, as admin, under auth)."""
    await _bucket(nc, create=True, replicas=replicas)


async def publish_location(nc: Any, directory: Path) -> ArchiveLocation:
    """Record where this process archives (absolute folder, this host) for the read commands."""
    location = ArchiveLocation(directory=str(directory.resolve()), host=socket.gethostname(), pid=os.getpid())
    kv = await _bucket(nc, create=True)
    await kv.put(S.INSTANCE_ARCHIVE_KEY, codec.encode_location(location))
    return location


async def read_location(nc: Any) -> ArchiveLocation | None:
    """The location the instance's archive projector published, or None (none yet, or unreadable)."""
    kv = await _bucket(nc, create=False)
    if kv is None:
        return None
    try:
        entry = await kv.get(S.INSTANCE_ARCHIVE_KEY)
    except nats.js.errors.KeyNotFoundError:
        return None
    return codec.decode_location(entry.value or b"")


@dataclass(frozen=True)
class Instance:
    """What the instance a read command reached says: where it archives (None: no archive
    projector published yet) and the last sequence of its event stream (0: no events)."""

    location: ArchiveLocation | None
    head: int

    def owns(self, directory: Path) -> bool:
        """Whether ``directory`` is the folder this instance's archive projector writes."""
        return self.location is not None and Path(self.location.directory) == directory.resolve()


async def ask_instance(nc: Any) -> Instance:
    """The published location and the stream's last sequence (0 when the stream does not exist yet)."""
    try:
        info = await nc.jetstream().stream_info(S.STREAM)
        head = int(info.state.last_seq)
    except nats.js.errors.NotFoundError:
        head = 0
    return Instance(await read_location(nc), head)

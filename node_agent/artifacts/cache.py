"""The agent's local content-addressed cache: a folder of blobs keyed by digest, fetched at most once.

Layout: ``<root>/sha256/<first two hex>/<digest>`` holds the content read-only (0o444), and
``<digest>.x`` a read-only executable copy (0o555) made on first need, so a workspace can
hardlink either without changing its mode. Every blob's mtime is set to one fixed instant
(`SEALED_MTIME_NS`) when it enters: a task that writes into a hardlinked input in place (root
ignores the read-only mode) moves the shared inode's mtime, and the next look-up sees it, logs
it, and drops the blob to fetch it again instead of laying out changed bytes under its digest.
A blob enters only whole and verified: the store's
`fetch` hashes it into a temporary file under ``<root>/tmp`` and renames it into place, so a
killed agent leaves at most a ``.part`` file there (cleared by `LocalCache.clear_partials`), never
a wrong blob under a digest's name. Concurrent needs of one digest in one agent share one fetch;
two agents sharing a cache folder may both fetch it, and the second rename replaces the first
with the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from node_agent.artifacts.digest import HashingReader, is_digest
from node_agent.artifacts.errors import BlobCorrupt

READ_ONLY, READ_EXEC = 0o444, 0o555
SEALED_MTIME_NS = 1_000_000_000 * 10**9  # 2001-09-09T01:46:40Z: no build writes a file then
log = logging.getLogger("niyantra.artifacts")


def seal(path: str | Path, mode: int) -> None:
    """Make a cache file read-only with the fixed mtime that shows it untouched."""
    os.chmod(path, mode)
    os.utime(path, ns=(SEALED_MTIME_NS, SEALED_MTIME_NS))


def is_sealed(path: Path) -> bool:
    """Tell whether a cache file is there and untouched since it was sealed; drop it if it was changed."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_mtime_ns == SEALED_MTIME_NS:
        return True
    log.warning("cached blob %s was changed after it was cached (a task wrote into an input?): dropped", path.name)
    path.unlink(missing_ok=True)
    return False


class BlobSource(Protocol):
    """Where the cache gets a blob it does not hold (`node_agent.artifacts.store.ArtifactStore`)."""

    async def fetch(self, digest: str, dest: Path) -> int: ...


class LocalCache:
    """Blobs on local disk by digest; a blob it holds is never fetched again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self.fetched = 0  # blobs this cache fetched from its source (hits fetch nothing)

    def path(self, digest: str, *, executable: bool = False) -> Path:
        """Where the blob of ``digest`` lives (whether or not it is there yet)."""
        if not is_digest(digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        name = f"{digest}.x" if executable else digest
        return self.root / "sha256" / digest[:2] / name

    def has(self, digest: str) -> bool:
        """Tell whether the blob is held, untouched."""
        return is_sealed(self.path(digest))

    async def ensure(self, digest: str, source: BlobSource) -> Path:
        """The local path of the blob, fetching it from ``source`` only if it is not held yet."""
        path = self.path(digest)
        while (running := self._inflight.get(digest)) is not None and not self.has(digest):
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # we were cancelled ourselves
                # the fetch we waited for was cancelled, not us: look again, fetch it ourselves
        if self.has(digest):
            return path
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            await self._fetch(digest, source, path)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: a failure that no other waiter awaits is reported once, here
            raise
        else:
            future.set_result(path)
        finally:
            del self._inflight[digest]
        return path

    async def _fetch(self, digest: str, source: BlobSource, path: Path) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"{digest}.", suffix=".part")
        os.close(fd)
        part = Path(tmp)
        try:
            await source.fetch(digest, part)  # verified and renamed onto ``part`` whole
            self.fetched += 1
            seal(part, READ_ONLY)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)

    def executable(self, digest: str) -> Path:
        """The read-only executable copy of a held blob (made once, by copy: a hardlink shares the mode)."""
        path = self.path(digest, executable=True)
        if is_sealed(path):
            return path
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"{digest}.x.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(self.path(digest), tmp)
            seal(tmp, READ_EXEC)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def add_file(self, src: Path, digest: str) -> Path:
        """Copy a local file (an output this agent just stored) into the cache, verifying its digest."""
        path = self.path(digest)
        if self.has(digest):
            return path
        self._tmp.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"{digest}.", suffix=".part")
        try:
            with open(src, "rb") as r, os.fdopen(fd, "wb") as w:
                reader = HashingReader(r, str(src))
                buf = bytearray(1 << 20)
                while n := reader.readinto(buf):
                    w.write(memoryview(buf)[:n])
            if reader.hexdigest() != digest:
                raise BlobCorrupt(digest, reader.hexdigest(), f"{src} changed before it was cached")
            seal(tmp, READ_ONLY)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def clear_partials(self) -> int:
        """Remove the temporary files a killed agent left; returns how many."""
        if not self._tmp.is_dir():
            return 0
        removed = 0
        for p in self._tmp.iterdir():
            p.unlink(missing_ok=True)
            removed += 1
        return removed

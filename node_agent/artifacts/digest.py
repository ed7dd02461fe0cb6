"""SHA-256 of files, streamed: a digest and a size without holding a file in memory.

The readers and writers here hash what passes through them, so an upload or a download checks
the content it actually moved, not a copy read before or after.
"""

from __future__ import annotations

import hashlib
import io
import stat
from typing import BinaryIO

from node_agent.artifacts.errors import BlobTooLarge

READ_CHUNK = 1 << 20
DIGEST_LEN = 64
_HEX = frozenset("0123456789abcdef")
EXECUTABLE, REGULAR = 0o755, 0o644


def is_digest(value: str) -> bool:
    """Tell whether ``value`` is a lowercase hex SHA-256 (a blob's name)."""
    return len(value) == DIGEST_LEN and not set(value) - _HEX


def file_mode(st_mode: int) -> int:
    """The recorded mode of a file: 0o755 if any execute bit is set, else 0o644 (a umask never shows)."""
    return EXECUTABLE if st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else REGULAR


def hash_file(path: str, limit: int | None = None, label: str = "") -> tuple[str, int]:
    """Hex SHA-256 and size of the file at ``path``, read in 1 MiB chunks (`BlobTooLarge` past
    ``limit``, naming ``label`` or ``path``)."""
    with open(path, "rb") as f:
        reader = HashingReader(f, label or path, limit)
        buf = bytearray(READ_CHUNK)
        while reader.readinto(buf):
            pass
    return reader.hexdigest(), reader.size


class HashingReader:
    """A binary reader that hashes and counts what it reads and refuses to read past ``limit``."""

    def __init__(self, f: io.BufferedIOBase, path: str, limit: int | None = None) -> None:
        self._f, self.path, self.limit = f, path, limit
        self._h = hashlib.sha256()
        self.size = 0

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Fill ``buf`` from the file; 0 at its end."""
        n: int = self._f.readinto(buf)
        if not n:
            return 0
        self.size += n
        if self.limit is not None and self.size > self.limit:
            raise BlobTooLarge(self.path, self.size, self.limit)
        self._h.update(memoryview(buf)[:n])
        return n

    def hexdigest(self) -> str:
        """SHA-256 of everything read so far."""
        return self._h.hexdigest()


class HashingWriter:
    """A binary writer that hashes and counts what it writes."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write ``data`` to the file."""
        self._h.update(data)
        self.size += len(data)
        return self._f.write(data)

    def hexdigest(self) -> str:
        """SHA-256 of everything written so far."""
        return self._h.hexdigest()

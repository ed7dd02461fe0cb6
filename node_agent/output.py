"""A task's output on its way to the log: secrets redacted as it streams, then capped.

`Redactor` replaces every occurrence of a secret value with ``***`` in a byte stream that
arrives in arbitrary chunks: it holds back just enough bytes (the longest secret minus one)
that a secret split across two chunks is still caught, so no prefix of a secret ever leaves.

`CappedOutput` keeps the first ``head`` and the last ``tail`` bytes of what it is fed and
counts what it dropped in between: build logs fail at the end, so the tail matters most.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

MASK = b"***"


@functools.lru_cache(maxsize=32)
def _matcher(secrets: tuple[str, ...]) -> tuple[re.Pattern[bytes] | None, int]:
    """The pattern matching any of ``secrets`` (longest first) and how many bytes to hold back:
    built once per set of secrets (an agent's are fixed), not once per run."""
    values = sorted({s.encode() for s in secrets if s}, key=lambda v: (-len(v), v))
    pattern = re.compile(b"|".join(re.escape(v) for v in values)) if values else None
    return pattern, max((len(v) for v in values), default=1) - 1


class Redactor:
    """Streaming redaction of secret values (bytes) in chunked output."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._pattern, self._hold = _matcher(tuple(secrets))
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        """Redact what can be decided now; keep back a possible partial secret at the end."""
        if self._pattern is None:
            return chunk
        data = self._carry + chunk
        emit = max(0, len(data) - self._hold)
        out = bytearray()
        pos = 0
        for m in self._pattern.finditer(data):
            if m.start() >= emit:
                break
            out += data[pos : m.start()] + MASK
            pos = m.end()
            emit = max(emit, pos)
        out += data[pos:emit]
        self._carry = data[emit:]
        return bytes(out)

    def close(self) -> bytes:
        """The rest of the stream (whatever was held back, redacted)."""
        rest, self._carry = self._carry, b""
        if self._pattern is None:
            return rest
        return self._pattern.sub(MASK, rest)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    r = Redactor(secrets)
    return (r.feed(text.encode()) + r.close()).decode(errors="replace")


class CappedOutput:
    """The first ``head`` and last ``tail`` bytes of a stream, with the count of what was dropped."""

    def __init__(self, cap: int, *, head_share: float = 0.25) -> None:
        self.head_cap = int(cap * head_share)
        self.tail_cap = cap - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        """Add the next piece of the stream."""
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        extra = len(self.tail) - self.tail_cap
        if extra > 0:
            del self.tail[:extra]
            self.dropped += extra

    def value(self) -> bytes:
        """The kept bytes; a marker line says how much was left out in the middle."""
        if not self.dropped:
            return bytes(self.head + self.tail)
        marker = f"\n[niyantra: {self.dropped} bytes of output omitted]\n".encode()
        return bytes(self.head) + marker + bytes(self.tail)

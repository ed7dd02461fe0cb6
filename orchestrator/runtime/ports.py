"""Free loopback ports for servers we start, chosen below the kernel's ephemeral range.

A server restarted on the port it had (a cluster member after a crash) must get that port back.
A port inside the ephemeral range can meanwhile be taken as the local end of some outgoing
connection (on loopback even by a client reconnecting to that very port: a TCP self-connect),
and the restart then fails with "address already in use". Ports below the range are never
handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from orchestrator.errors import ServerError

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)
_LOWEST = 10000


def ephemeral_range(text: str | None = None) -> tuple[int, int]:
    """The kernel's ephemeral port range (``text`` as in ip_local_port_range, else read it)."""
    if text is None:
        try:
            text = _RANGE_FILE.read_text()
        except OSError:
            return _DEFAULT_EPHEMERAL
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return _DEFAULT_EPHEMERAL
    low, high = int(parts[0]), int(parts[1])
    return (low, high) if 0 < low <= high else _DEFAULT_EPHEMERAL


def is_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, *, rng: random.Random | None = None) -> int:
    """``preferred`` if it is free, else a free loopback port below the ephemeral range."""
    if preferred is not None and 0 < preferred < 65536 and is_free(preferred):
        return preferred
    low, _ = ephemeral_range()
    top = low if low > _LOWEST + 1000 else 65535
    rng = rng or random.Random()
    for _ in range(200):
        port = rng.randrange(_LOWEST, top)
        if is_free(port):
            return port
    raise ServerError(f"no free loopback port between {_LOWEST} and {top}")

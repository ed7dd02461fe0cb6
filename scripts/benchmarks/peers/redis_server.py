"""A throwaway Redis server for the Celery peer: Debian's redis-server on a free loopback port, in a
temp dir, append-only file on with ``appendfsync always`` (every write fsynced before it is
acknowledged, as niyantra's stream with ``sync_interval: always``), no RDB snapshots and no AOF
rewrite (so the AOF holds every write the run made), and its AOF counted in bytes and commands."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(data_dir: Path) -> Iterator[int]:
    """Start redis-server in ``data_dir``; yields its port; stops it afterwards."""
    exe = shutil.which("redis-server")
    if not exe:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0"]
    proc = subprocess.Popen([*args, "--daemonize", "no", "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port} (exit {proc.poll()})")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def count_commands(data: bytes) -> int:
    """Commands in an AOF (RESP arrays of bulk strings, as Redis writes them)."""
    n, i = 0, 0
    while i < len(data):
        if data[i : i + 1] != b"*":
            nl = data.find(b"\n", i)  # an inline line (not written by Redis itself): skip it
            i = len(data) if nl < 0 else nl + 1
            continue
        nl = data.index(b"\r\n", i)
        items, i = int(data[i + 1 : nl]), nl + 2
        for _ in range(items):
            nl = data.index(b"\r\n", i)
            i = nl + 2 + int(data[i + 1 : nl]) + 2
        n += 1
    return n


def aof_stats(data_dir: Path) -> dict[str, float]:
    """Bytes and commands of every append-only file under ``data_dir`` (Redis 7: appendonlydir/)."""
    files = [f for f in data_dir.rglob("*.aof") if f.is_file()]
    return {
        "aof_bytes": sum(f.stat().st_size for f in files),
        "aof_commands": sum(count_commands(f.read_bytes()) for f in files),
    }

"""Fixtures: a real nats-server per test on a random loopback port with a temporary store."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import nats
import pytest

from orchestrator.runtime.natsserver import RunningServer, server_args, start_server


@pytest.fixture(scope="session", autouse=True)
def resident_folder() -> Iterator[Path]:
    """The session's own folder for resident servers (`orchestrator.cli.resident`): a ``niyantra
    build`` the tests run starts one there, not in the user's; removing the folder at the end
    removes its socket, and a server whose socket is gone exits."""
    folder = Path(tempfile.mkdtemp(prefix="niyantra-tests-"))
    os.environ["NIYANTRA_RESIDENT_DIR"] = str(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_nats(tmp: Path, *, sync_always: bool = False) -> RunningServer:
    """Start a JetStream nats-server on a random port under ``tmp``."""
    extra: tuple[str, ...] = ()
    config = None
    if sync_always:
        config = tmp / "test.conf"
        config.write_text("jetstream { store_dir: $NIYANTRA_STORE_DIR, sync_interval: always }\n")
    args = server_args(config=config, port=-1, http_port=None, store_dir=tmp / "js", extra=extra)
    return start_server(args, tmp / "nats.log", store_dir=tmp / "js")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A fresh nats-server with JetStream for one test."""
    server = run_nats(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_server: RunningServer) -> AsyncIterator[nats.NATS]:
    """A client connected to the test's nats-server."""
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.close()


async def assert_eventually(
    fn: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.05, message: str = ""
) -> object:
    """Await until ``fn()`` (sync or async) returns a truthy value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = fn()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {message} (last value: {last!r})")

"""The sync→async bridge: a private asyncio loop in a daemon thread, and a NATS client on it.

eventsourcing calls recorders synchronously from many threads, while nats-py is asyncio. Each
`SyncNats` runs one event loop in its own thread; callers submit coroutines with
`asyncio.run_coroutine_threadsafe` and block on the result, so all client state (and any cache
kept by the coroutines) is touched by that one loop thread only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import nats
import nats.errors

from orchestrator.errors import EventLogUnavailable
from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.runtime.connection import server_list
from orchestrator.runtime.ordered import subscribe_ordered

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class LoopThread:
    """An asyncio event loop running in a daemon thread; coroutines are submitted from any thread."""

    def __init__(self, name: str = "niyantra-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = DEFAULT_TIMEOUT) -> T:
        """Run ``coro`` on the loop and return its result, blocking the calling thread."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop: it would deadlock")
        with self._lock:
            if self._closed:
                coro.close()  # never scheduled, so close it rather than leak "never awaited"
                raise EventLogUnavailable("the NATS connection is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as e:
            future.cancel()
            raise EventLogUnavailable(f"no answer from NATS within {timeout}s") from e
        except concurrent.futures.CancelledError as e:
            raise EventLogUnavailable("the NATS connection was closed during the call") from e

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is still running, stop the loop and join the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            done = asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop)
        try:
            done.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()


async def _cancel_all() -> None:
    """Cancel every other task on the running loop and wait for them to finish."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class SyncNats:
    """A NATS client living on its own `LoopThread`, usable from synchronous code."""

    def __init__(self, loop: LoopThread, nc: Client) -> None:
        self.loop = loop
        self.nc = nc

    @classmethod
    def connect(cls, url: str, *, name: str = "niyantra-eventstore", timeout: float = 10.0) -> SyncNats:
        """Start a loop thread and connect to ``url`` on it."""
        loop = LoopThread(name=f"{name}-loop")
        try:
            nc = loop.run(_connect(url, name, timeout), timeout=timeout + 5)
        except BaseException:
            loop.close()
            raise
        return cls(loop, nc)

    @property
    def closed(self) -> bool:
        """Whether the connection has been closed."""
        return self.loop.closed

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = DEFAULT_TIMEOUT) -> T:
        """Run ``coro`` on this connection's loop and return its result."""
        return self.loop.run(coro, timeout)

    def watch(self, stream: str, subject: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` for each message stored on ``subject`` from now on; return its stopper.

        An ordered, headers-only push consumer: it only signals, so a waiter reads what it needs.
        """
        sub = self.run(_watch(self.nc, stream, subject, wake))

        def unwatch() -> None:
            if not self.closed:  # a closed connection took the subscription along
                self.run(sub.unsubscribe())

        return unwatch

    def close(self) -> None:
        """Close the client, then the loop (idempotent)."""
        if self.loop.closed:
            return
        try:
            self.loop.run(self.nc.close(), timeout=10.0)
        finally:
            self.loop.close()


async def _probe(url: str, timeout: float) -> None:
    """Fail fast when every server refuses (nats-py would keep retrying until the timeout); one
    that accepts is enough, as a cluster's URL still works with a member down."""
    error: BaseException | None = None
    for server in server_list(url):
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), timeout)
        except (OSError, TimeoutError) as e:
            error = e
            continue
        writer.close()
        await writer.wait_closed()
        return
    assert error is not None  # server_list names at least one server
    raise error


async def _connect(url: str, name: str, timeout: float) -> Client:
    try:
        await _probe(url, timeout)
        # nats-py keeps retrying an unreachable server, so bound the first connect ourselves.
        connecting = nats_connect(url, name=name, connect_timeout=timeout)
        return await asyncio.wait_for(connecting, timeout)
    except (nats.errors.Error, OSError, TimeoutError) as e:
        raise EventLogUnavailable(f"cannot connect to NATS at {url}: {e!r}") from e


async def _watch(nc: Client, stream: str, subject: str, wake: Callable[[], None]) -> JetStreamContext.PushSubscription:
    async def on_message(_: Msg) -> None:
        wake()

    return await subscribe_ordered(nc, subject, stream=stream, cb=on_message, headers_only=True)

"""The shell every long-running niyantra process shares: logging, signals, the ready file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats.errors
import nats.js.errors

from node_agent.errors import LogStoreUnavailable
from orchestrator.errors import EventLogUnavailable
from projections.errors import ViewStoreUnavailable

# Errors that mean "NATS is not answering right now", not "this process is wrong".
TRANSIENT = (
    EventLogUnavailable,
    ViewStoreUnavailable,
    LogStoreUnavailable,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    ConnectionError,
)
STOP_GRACE_S = 5.0  # how long ``main`` may take to finish by itself after SIGTERM or SIGINT
START_RETRY_S = 60.0  # how long a process that has not yet served retries NATS being unavailable
_SERVED = threading.Event()  # set by the ready marker: the process has started serving


def setup_logging(name: str) -> logging.Logger:
    """Log lines to stderr with time and process name."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    return logging.getLogger(name)


def ready_marker(path: Path | None) -> Callable[[], None]:
    """A callback that writes the ready file ``path`` (if any) once the process is serving."""

    def mark() -> None:
        _SERVED.set()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("ready\n")

    return mark


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` on a fresh event loop; SIGTERM and SIGINT set ``stop``.

    Crash-only restart: losing NATS for a while (a server of a cluster killed, a stream leader
    being re-elected) restarts ``main`` after a short backoff instead of ending the process. Every
    process resumes from durable state (a checkpoint, a durable consumer, the views), so a restart
    is safe. Once the process has served (its ready marker ran) it retries for as long as it
    runs; before that, for ``START_RETRY_S`` (a process restarted while a cluster elects its
    leaders must not end for good), after which the error ends it with its one-line message.
    """

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # platforms without signal support
                loop.add_signal_handler(sig, stop.set)
        failures = 0
        started = loop.time()
        while True:
            try:
                await _until_stopped(main, stop)
                return
            except TRANSIENT as e:
                if stop.is_set() or (not _SERVED.is_set() and loop.time() - started > START_RETRY_S):
                    raise
                failures += 1
                delay = min(5.0, 0.1 * 2**failures)
                logging.getLogger(__name__).warning("NATS unavailable (%r); restarting in %.1fs", e, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return

    asyncio.run(wrapper())


async def _until_stopped(main: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    """Await ``main(stop)``; once ``stop`` is set, give it ``STOP_GRACE_S`` to finish by itself
    (flush, close) and then cancel it: a process waiting on a server that is gone (a connect or a
    request retrying forever) still ends on SIGTERM."""
    runner = asyncio.ensure_future(main(stop))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not runner.done():
            await asyncio.wait({runner}, timeout=STOP_GRACE_S)
        if not runner.done():
            logging.getLogger(__name__).warning("still busy %.0fs after the stop signal; cancelled", STOP_GRACE_S)
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            return
        runner.result()  # main's own outcome: returned, or its error
    finally:
        stopped.cancel()

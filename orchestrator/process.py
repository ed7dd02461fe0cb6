"""The shell every long-running niyantra process shares: logging, signals, the ready file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path


def setup_logging(name: str) -> logging.Logger:
    """Log lines to stderr with time and process name."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    return logging.getLogger(name)


def ready_marker(path: Path | None) -> Callable[[], None]:
    """A callback that writes the ready file ``path`` (if any) once the process is serving."""

    def mark() -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("ready\n")

    return mark


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` on a fresh event loop; SIGTERM and SIGINT set ``stop``."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # platforms without signal support
                loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(wrapper())

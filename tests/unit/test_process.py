"""The process shell's crash-only restart rule: NATS being unavailable restarts ``main`` after a
backoff (also before the first ready, for a while); any other error ends the process at once."""

from __future__ import annotations

import asyncio
import os
import signal

import nats.errors
import pytest

from orchestrator.processes import shell as process


def _main_failing(errors: list[BaseException], calls: list[int]):
    async def main(stop: asyncio.Event) -> None:
        calls.append(1)
        if errors:
            raise errors.pop(0)

    return main


def test_nats_unavailable_restarts_main_until_it_returns():
    calls: list[int] = []
    errors: list[BaseException] = [nats.errors.TimeoutError(), nats.errors.NoRespondersError()]
    process.run_until_signalled(_main_failing(errors, calls))
    assert len(calls) == 3 and errors == []


def test_before_ready_nats_unavailable_ends_the_process_after_the_start_window(monkeypatch):
    monkeypatch.setattr(process, "START_RETRY_S", -1.0)  # the window is already over
    assert not process._SERVED.is_set()
    calls: list[int] = []
    with pytest.raises(nats.errors.TimeoutError):
        process.run_until_signalled(_main_failing([nats.errors.TimeoutError()], calls))
    assert len(calls) == 1


def test_any_other_error_ends_the_process_at_once():
    calls: list[int] = []
    with pytest.raises(ValueError, match="bad config"):
        process.run_until_signalled(_main_failing([ValueError("bad config")], calls))
    assert len(calls) == 1


def test_sigterm_sets_stop_and_a_main_that_honours_it_finishes_by_itself():
    finished: list[str] = []

    async def main(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await stop.wait()
        finished.append("flushed and closed")

    process.run_until_signalled(main)
    assert finished == ["flushed and closed"]


def test_a_main_stuck_after_sigterm_is_cancelled_after_the_grace(monkeypatch):
    monkeypatch.setattr(process, "STOP_GRACE_S", 0.2)
    seen: list[str] = []

    async def main(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        try:
            await asyncio.Event().wait()  # like a connect retrying forever against a server that is gone
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    process.run_until_signalled(main)
    assert seen == ["cancelled"]

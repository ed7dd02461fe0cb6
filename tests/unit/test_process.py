"""The process shell's crash-only restart rule: NATS being unavailable restarts ``main`` after a
backoff (also before the first ready, for a while); any other error ends the process at once."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest

from orchestrator import process


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

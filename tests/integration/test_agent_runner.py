"""`node_agent.runner.run_command` on real shells, without a server: the event loop itself watches
the shell (its pidfd and output pipe), with no waiting thread per task, and the exit is still
found when there are no pidfds (polled)."""

from __future__ import annotations

import asyncio
import os
import threading

from node_agent import runner
from tests.conftest import assert_eventually


def _waiting_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "waitpid" in t.name]


async def test_a_run_is_watched_by_the_loop_not_by_a_thread(tmp_path):
    out: list[bytes] = []
    release = tmp_path / "release"
    command = f"echo started; while [ ! -e {release} ]; do sleep 0.01; done; echo done >&2; exit 3"
    run = asyncio.create_task(
        runner.run_command(command, cwd=tmp_path, env={"PATH": os.environ["PATH"]}, timeout_s=20, sink=out.append)
    )
    await assert_eventually(lambda: b"started" in b"".join(out), timeout=10, message="the shell printed")
    assert _waiting_threads() == []  # asyncio's subprocess transport starts one per child
    release.touch()
    result = await asyncio.wait_for(run, 20)
    assert (result.exit_code, result.timed_out, result.cancelled) == (3, False, False)
    assert b"".join(out) == b"started\ndone\n"


async def test_without_pidfds_the_exit_is_polled(tmp_path, monkeypatch):
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "pidfd_open not implemented")

    monkeypatch.setattr(runner.os, "pidfd_open", no_pidfd)
    out: list[bytes] = []
    env = {"PATH": os.environ["PATH"]}
    result = await runner.run_command("sleep 0.1; echo late", cwd=tmp_path, env=env, timeout_s=20, sink=out.append)
    assert (result.exit_code, b"".join(out)) == (0, b"late\n")
    killed = await runner.run_command("kill -9 $$", cwd=tmp_path, env=env, timeout_s=20, sink=out.append)
    assert killed.exit_code == -9


async def test_a_cancel_stops_the_shell_and_says_so(tmp_path):
    cancel = asyncio.Event()
    out: list[bytes] = []
    env = {"PATH": os.environ["PATH"]}
    run = asyncio.create_task(
        runner.run_command(
            "echo up; sleep 300", cwd=tmp_path, env=env, timeout_s=None, sink=out.append, cancel=cancel, grace_s=5
        )
    )
    await assert_eventually(lambda: b"up" in b"".join(out), timeout=10, message="the shell printed")
    cancel.set()
    result = await asyncio.wait_for(run, 20)
    assert (result.cancelled, result.error, result.exit_code) == (True, "cancelled", -15)

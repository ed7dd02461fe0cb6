"""Running one task command: bash in its own session (so its own process group), output
streamed to a sink, and a stop (timeout or cancel) that kills the whole group, grandchildren too.

Stopping is TERM to the group, a grace period, then KILL to the group. After the shell exits
the group is KILLed once more: a grandchild left in the background never outlives its task.
On Linux the shell also gets ``PR_SET_PDEATHSIG=SIGKILL``, so a task dies with its agent when
the agent is killed outright (a SIGKILLed agent cannot clean up; its work must not run on
unsupervised and write results twice).

The death signal is set by util-linux ``setpriv --pdeathsig KILL`` exec'ing bash when it is
installed, so the spawn needs no Python pre-exec hook and CPython can use vfork: a fork of the
whole agent (with a pre-exec hook) blocks its event loop for 3-30 ms per task on a loaded 2-core
machine, and halved the no-op throughput. Without setpriv the hook is used (it also checks that
the agent is still the parent; with setpriv an agent SIGKILLed in the microseconds before
setpriv's prctl leaves that one shell running, which reports nothing: only the agent reports).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
READ_CHUNK = 65536
DRAIN_AFTER_KILL_S = 2.0
EXIT_POLL_S = 0.001  # the child watcher sets the return code within about a millisecond of the exit


@dataclass(frozen=True)
class RunResult:
    """What happened when a command ran (its output went to the sink)."""

    exit_code: int | None
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False
    error: str = ""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once (``find_library`` runs ``ldconfig``: ~10 ms a call)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name, use_errno=True).prctl


@functools.cache
def _setpriv() -> str | None:
    """util-linux ``setpriv`` if it supports ``--pdeathsig`` (2.33+), else None."""
    path = shutil.which("setpriv")
    if path is None or not sys.platform.startswith("linux"):
        return None
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in out else None


def _shell(command: str) -> tuple[list[str], Callable[[], None] | None]:
    """The argv that runs ``command`` with bash, and the pre-exec hook it still needs (if any)."""
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", "/bin/bash", "-c", command], None
    return ["/bin/bash", "-c", command], _pdeathsig_setup()


def _pdeathsig_setup() -> Callable[[], None] | None:
    """A pre-exec hook that makes the child die with this process (Linux only)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the agent died before the hook ran
            os._exit(137)

    return setup


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pgid, sig)


async def _exit(proc: asyncio.subprocess.Process) -> int:
    """Wait for the shell itself to exit (``proc.wait()`` also waits for its pipes to close,
    which a background grandchild holding stdout would delay forever)."""
    try:
        fd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here, or already reaped: poll the return code
        fd = None
    if fd is not None:
        loop = asyncio.get_running_loop()
        exited = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    while proc.returncode is None:  # the child watcher records the status a moment later
        await asyncio.sleep(EXIT_POLL_S)
    return proc.returncode


async def _pump(stream: asyncio.StreamReader, sink: Callable[[bytes], None]) -> None:
    while chunk := await stream.read(READ_CHUNK):
        sink(chunk)


async def _stop_group(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(_exit(proc), timeout=grace_s)
    except TimeoutError:
        _kill_group(proc.pid, signal.SIGKILL)
        await _exit(proc)


async def _wait(proc: asyncio.subprocess.Process, timeout_s: float | None, cancel: asyncio.Event) -> str:
    """Wait for the shell to exit, the timeout, or the cancel: which came first."""
    exited = asyncio.ensure_future(_exit(proc))
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait({exited, cancelled}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in (exited, cancelled):
            f.cancel()
    if exited in done:
        return "exited"
    return "cancelled" if cancelled in done else "timeout"


async def run_command(
    command: str,
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float | None,
    sink: Callable[[bytes], None],
    cancel: asyncio.Event | None = None,
    grace_s: float = 5.0,
) -> RunResult:
    """Run ``command`` with bash in its own session; stdout and stderr go, interleaved, to ``sink``."""
    started = time.monotonic()
    cancel = cancel or asyncio.Event()
    if cancel.is_set():
        return RunResult(None, 0.0, cancelled=True, error="cancelled before it started")
    try:
        argv, preexec = _shell(command)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as e:
        return RunResult(None, time.monotonic() - started, error=f"cannot start: {e}")
    assert proc.stdout is not None
    reader = asyncio.create_task(_pump(proc.stdout, sink))
    how = "exited"
    try:
        how = await _wait(proc, timeout_s, cancel)
        if how != "exited":
            await _stop_group(proc, grace_s)
    finally:
        if proc.returncode is None:  # the agent itself is stopping: never leave the group behind
            _kill_group(proc.pid, signal.SIGKILL)
            await _exit(proc)
        _kill_group(proc.pid, signal.SIGKILL)  # grandchildren that outlived the shell
        with contextlib.suppress(TimeoutError):  # a descendant that left the group keeps the pipe
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_AFTER_KILL_S)
        reader.cancel()
    error = {"timeout": f"timed out after {timeout_s}s", "cancelled": "cancelled"}.get(how, "")
    return RunResult(
        proc.returncode,
        time.monotonic() - started,
        timed_out=how == "timeout",
        cancelled=how == "cancelled",
        error=error,
    )

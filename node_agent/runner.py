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

The shell is a plain `subprocess.Popen`, watched by the running event loop itself: its output
pipe and its pidfd (Linux 5.3+) are readers of the loop, and the exit is reaped with a
non-blocking wait once the pidfd says the shell is gone. asyncio's subprocess transport would
start a thread with a blocking ``waitpid`` per task (its default child watcher), and a child
watcher of our own would be process-global state (an event-loop policy's), which breaks other
loops in the same process; this needs neither. Without pidfds the exit is polled.
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
EXIT_POLL_S = (0.001, 0.05)  # without pidfds: the exit is polled, from every 1 ms up to every 50 ms


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


@functools.cache
def _devnull() -> int:
    """One read-only descriptor of /dev/null for every task's stdin (not an open and close per run)."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


class _Shell:
    """A started shell as the running loop sees it: its output streamed to ``sink`` as it comes,
    ``exited`` (its exit code, once reaped) and ``drained`` (its output pipe closed)."""

    def __init__(self, popen: subprocess.Popen[bytes], sink: Callable[[bytes], None]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = self.loop.create_future()
        self.drained: asyncio.Future[None] = self.loop.create_future()
        self._sink = sink
        assert popen.stdout is not None
        self._out: int | None = popen.stdout.fileno()
        os.set_blocking(self._out, False)
        self.loop.add_reader(self._out, self._read)
        self._poller: asyncio.Task[None] | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfds here: poll the exit
            self._pidfd = None
            self._poller = self.loop.create_task(self._poll())
        else:
            self.loop.add_reader(self._pidfd, self._reap)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _read(self) -> None:
        assert self._out is not None
        try:
            chunk = os.read(self._out, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if chunk:
            self._sink(chunk)
            return
        self._close_output()

    def _close_output(self) -> None:
        if self._out is not None:
            self.loop.remove_reader(self._out)
            self._out = None
            assert self.popen.stdout is not None
            self.popen.stdout.close()
        if not self.drained.done():
            self.drained.set_result(None)

    def _reap(self) -> None:
        """The pidfd is readable: the shell exited; collect its status without blocking."""
        if self.popen.poll() is None:
            return
        if self._pidfd is not None:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if not self.exited.done():
            self.exited.set_result(self.popen.returncode)

    async def _poll(self) -> None:
        delay, most = EXIT_POLL_S
        while self.popen.poll() is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)
        if not self.exited.done():
            self.exited.set_result(self.popen.returncode)

    async def exit(self) -> int:
        """Wait for the shell itself to exit (not for its pipe: a background grandchild holding
        stdout would delay that forever); a cancelled waiter leaves ``exited`` to the next one."""
        return await asyncio.shield(self.exited)

    def close(self) -> None:
        """Stop watching: the output pipe and the pidfd closed (the shell has been reaped, or is
        left to `subprocess`'s own clean-up when the agent itself is going)."""
        self._close_output()
        if self._pidfd is not None:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._poller is not None:
            self._poller.cancel()


async def _stop_group(shell: _Shell, grace_s: float) -> None:
    _kill_group(shell.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(shell.exit(), timeout=grace_s)
    except TimeoutError:
        _kill_group(shell.pid, signal.SIGKILL)
        await shell.exit()


async def _wait(shell: _Shell, timeout_s: float | None, cancel: asyncio.Event) -> str:
    """Wait for the shell to exit, the timeout, or the cancel: which came first."""
    if cancel.is_set():
        return "cancelled"
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait({shell.exited, cancelled}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if shell.exited in done:
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
        popen = subprocess.Popen(
            argv,
            bufsize=0,
            cwd=str(cwd),
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
            stdin=_devnull(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as e:
        return RunResult(None, time.monotonic() - started, error=f"cannot start: {e}")
    shell = _Shell(popen, sink)
    how = "exited"
    try:
        how = await _wait(shell, timeout_s, cancel)
        if how != "exited":
            await _stop_group(shell, grace_s)
    finally:
        try:
            if shell.returncode is None:  # the agent itself is stopping: never leave the group behind
                _kill_group(shell.pid, signal.SIGKILL)
                await shell.exit()
            _kill_group(shell.pid, signal.SIGKILL)  # grandchildren that outlived the shell
            if not shell.drained.done():
                with contextlib.suppress(TimeoutError):  # a descendant that left the group keeps the pipe
                    await asyncio.wait_for(asyncio.shield(shell.drained), DRAIN_AFTER_KILL_S)
        finally:
            shell.close()
    error = {"timeout": f"timed out after {timeout_s}s", "cancelled": "cancelled"}.get(how, "")
    return RunResult(
        shell.returncode,
        time.monotonic() - started,
        timed_out=how == "timeout",
        cancelled=how == "cancelled",
        error=error,
    )

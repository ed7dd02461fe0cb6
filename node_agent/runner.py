"""Running one task command: its own process group, a timeout that kills the whole group,
and output captured up to a cap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

OUTPUT_CAP = 64 * 1024


@dataclass(frozen=True)
class RunResult:
    """What happened when a command ran."""

    exit_code: int | None
    duration_s: float
    timed_out: bool
    output: bytes
    error: str = ""


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    buf = bytearray()
    while chunk := await stream.read(65536):
        if len(buf) < cap:
            buf += chunk[: cap - len(buf)]
    return bytes(buf)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(pgid, sig)


async def run_command(
    command: str,
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float | None,
    grace_s: float = 5.0,
    cap: int = OUTPUT_CAP,
) -> RunResult:
    """Run ``command`` with bash in its own session; on timeout TERM then KILL the group."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/bash",
            "-c",
            command,
            cwd=str(cwd),
            env=env,
            start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as e:
        return RunResult(None, time.monotonic() - started, False, b"", f"cannot start: {e}")
    assert proc.stdout is not None
    reader = asyncio.create_task(_read_capped(proc.stdout, cap))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout=timeout_s)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace_s)
        except TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    finally:
        if proc.returncode is None:  # cancelled: never leave the group behind
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    _kill_group(proc.pid, signal.SIGKILL)  # grandchildren that outlived the shell
    output = await reader
    error = f"timed out after {timeout_s}s" if timed_out else ""
    return RunResult(proc.returncode, time.monotonic() - started, timed_out, output, error)

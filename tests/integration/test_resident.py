"""The resident command server (`orchestrator.cli.resident`): the first ``niyantra build`` (or any
command but an instance's processes) starts it, later ones run in a child it forks, with the
caller's folder, environment, output and exit status; Ctrl-C reaches the command, a vanished caller
takes its command along, an idle server or one whose socket is gone exits, and it is never used
where it should not be."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import resident
from tests.integration.agent_support import NIYANTRA, REPO, gone, niyantra
from tests.integration.harness import system

MANIFEST = "rule cc\n  command = cc -c $in -o $out\nbuild a.o: cc a.c\n"
SERVED = re.compile(r"served by the resident server \(pid (\d+)\) as pid (\d+)")


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lock_free(lock: Path) -> bool:
    with open(lock, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


@pytest.fixture
def home() -> Iterator[Path]:
    """The servers' private folder (short: a socket path is at most 107 bytes); every server that
    started there has exited (its lock is free) before the folder goes."""
    folder = Path(tempfile.mkdtemp(prefix="nr-"))
    try:
        yield folder
    finally:
        for sock in folder.glob("*.sock"):
            sock.unlink()
        for lock in folder.glob("*.lock"):
            wait_for(lambda lock=lock: _lock_free(lock), f"the server of {lock.name} exited")
        shutil.rmtree(folder)


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "NIYANTRA_RESIDENT_DIR": str(home), "NIYANTRA_RESIDENT_TRACE": "1", **extra}


def run(home: Path, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NIYANTRA, *args], cwd=cwd, env=env_for(home, **extra), capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def served(home: Path, cwd: Path) -> None:
    """Start the server (by a first command) and wait until a command is served."""
    run(home, "build", "nowhere", cwd=cwd)
    wait_for(lambda: list(home.glob("*.sock")), "the server's socket")
    wait_for(lambda: SERVED.search(run(home, "build", "nowhere", cwd=cwd).stderr), "a command served")


def test_the_first_build_starts_the_server_and_the_next_run_in_it_with_the_caller_s_folder_and_env(
    home: Path, tmp_path: Path
) -> None:
    first = run(home, "build", "nowhere", cwd=tmp_path)
    assert first.returncode == 2 and "nowhere" in first.stderr and not SERVED.search(first.stderr)
    served(home, tmp_path)
    again = run(home, "build", "nowhere", cwd=tmp_path)
    assert again.returncode == 2 and SERVED.search(again.stderr)
    assert re.sub(r"niyantra: served by .*\n", "", again.stderr) == first.stderr  # what the caller sees is the same
    for bad in (("build", "nowhere", "--bogus"), ("why",)):  # click's usage lines name the program as called
        here = run(home, *bad, cwd=tmp_path, NIYANTRA_RESIDENT="0")
        there = run(home, *bad, cwd=tmp_path)
        assert SERVED.search(there.stderr) and here.returncode == there.returncode == 2
        assert re.sub(r"niyantra: served by .*\n", "", there.stderr) == here.stderr
        assert "Usage: python -m orchestrator.cli.main " in here.stderr
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "build.ninja").write_text(MANIFEST)
    (tmp_path / "b" / "a.c").write_text("int a;\n")
    port = _free_port()  # nothing listens there: the child reports the caller's url
    unreachable = run(home, "build", "b", cwd=tmp_path, NIYANTRA_NATS_URL=f"nats://127.0.0.1:{port}")
    assert unreachable.returncode == 2 and SERVED.search(unreachable.stderr)
    assert f"cannot reach nats://127.0.0.1:{port}" in unreachable.stderr


async def test_ctrl_c_reaches_the_command_and_a_vanished_caller_takes_its_command_along(
    home: Path, tmp_path: Path, nats_server: Any
) -> None:
    await asyncio.to_thread(served, home, tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "build.ninja").write_text(MANIFEST)
    (tmp_path / "b" / "a.c").write_text("int a;\n")
    async with system(nats_server.url, tmp_path / "unused", agents=0):  # no agent: a build waits until stopped
        for run_no, (sig, status) in enumerate(((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)), 1):
            errors = tmp_path / f"err-{run_no}"
            with open(errors, "w") as err:
                client = subprocess.Popen([*NIYANTRA, "build", "b"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                          stderr=err, env=env_for(home, NIYANTRA_NATS_URL=nats_server.url))  # fmt: skip
            match = await until(lambda errors=errors: SERVED.search(errors.read_text()), "the command served")
            child = int(match.group(2))
            graph = f"b-{run_no}"
            await until(
                lambda graph=graph: graph in niyantra("status", url=nats_server.url).stdout, f"{graph} submitted"
            )
            client.send_signal(sig)
            assert await asyncio.to_thread(client.wait, 30) == status
            await until(lambda child=child: gone(child), f"the served command (pid {child}) ended after {sig!r}")


async def until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """`wait_for` off the event loop (the pipeline runs on it)."""
    return await asyncio.to_thread(wait_for, check, what, timeout)


def test_an_idle_server_exits_and_so_does_one_whose_socket_is_gone(home: Path, tmp_path: Path) -> None:
    run(home, "build", "nowhere", cwd=tmp_path, NIYANTRA_RESIDENT_IDLE_S="1")
    [lock] = wait_for(lambda: list(home.glob("*.lock")), "the server's lock")
    wait_for(lambda: not _lock_free(lock), "the server holding its lock")
    wait_for(lambda: _lock_free(lock) and not list(home.glob("*.sock")), "the idle server gone with its socket")
    served(home, tmp_path)
    [sock] = home.glob("*.sock")
    sock.unlink()
    wait_for(lambda: _lock_free(lock), "the server whose socket was removed exited")


def test_it_serves_no_instance_process_only_when_on_and_only_from_a_private_folder(tmp_path: Path, monkeypatch) -> None:
    assert (
        resident.enabled(["build", "b"]) and resident.enabled(["--debug", "status"]) and resident.enabled(["why", "t"])
    )
    for process in ("up", "server", "agent", "projector", "decider", "watchdog", "console", "autoscale"):
        assert not resident.enabled([process]), process  # an instance's processes run as themselves
    assert not resident.enabled(["build", "--help"]) and not resident.enabled([])
    monkeypatch.setenv("NIYANTRA_RESIDENT", "0")
    assert not resident.enabled(["build", "b"])
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("NIYANTRA_RESIDENT_DIR", str(shared))
    assert resident.socket_dir() is None and resident.run_resident(["build", "b"]) is None
    assert list(shared.iterdir()) == []  # nothing started, nothing written


def test_the_client_imports_no_library_and_the_key_follows_the_code(tmp_path: Path) -> None:
    probe = "import sys, orchestrator.cli.resident as r; print(sorted(set(sys.modules) & {'typer', 'rich', 'nats'}))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    before = resident.code_key()
    assert resident.code_key() == before
    source = REPO / "orchestrator" / "cli" / "resident.py"
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert resident.code_key() != before  # an edit is another server
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert resident.code_key() == before

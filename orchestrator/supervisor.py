"""``niyantra up`` / ``down``: start nats-server, projectors, decider and agents as separate OS
processes under one data directory, record exactly what was started, and stop exactly that."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from orchestrator.errors import ServerError
from orchestrator.natsserver import default_config, server_args, start_server

MANIFEST = "processes.json"
# Children outlive `up`; holding their Popen objects keeps Python from warning that a
# still-running child was garbage-collected while this process lives (tests call `up` inline).
_SPAWNED: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class UpSettings:
    """What ``up`` starts and where."""

    data_dir: Path
    port: int = 4222
    agents: int = 3
    slots: int = 2
    config: Path | None = None
    ready_timeout_s: float = 60.0


@dataclass
class Started:
    """One process ``up`` started: enough to find exactly it again (pid + start time)."""

    name: str
    pid: int
    create_time: float
    log: str


@dataclass
class Manifest:
    """Everything an instance consists of, written to ``<data-dir>/run/processes.json``."""

    url: str
    http_port: int
    processes: list[Started] = field(default_factory=list)


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ServerError("no free port")


def manifest_path(data_dir: Path) -> Path:
    """Where ``up`` records what it started."""
    return data_dir / "run" / MANIFEST


def read_manifest(data_dir: Path) -> Manifest | None:
    """The manifest of a running (or crashed) instance, if any."""
    path = manifest_path(data_dir)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Manifest(raw["url"], raw["http_port"], [Started(**p) for p in raw["processes"]])


def _write_manifest(data_dir: Path, m: Manifest) -> None:
    path = manifest_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(m), indent=2))
    tmp.replace(path)


def _is_ours(p: Started) -> psutil.Process | None:
    try:
        proc = psutil.Process(p.pid)
        if abs(proc.create_time() - p.create_time) < 0.01:
            return proc
    except psutil.NoSuchProcess:
        pass
    return None


def child_specs(s: UpSettings, url: str, run: Path) -> list[tuple[str, list[str]]]:
    """The commands ``up`` runs after the server, each with its ready file."""
    cli = [sys.executable, "-m", "orchestrator.cli"]
    specs = [
        ("projector-readiness", cli + ["projector", "readiness"]),
        ("projector-node-scores", cli + ["projector", "node-scores"]),
        ("projector-confidence", cli + ["projector", "confidence"]),
        ("projector-archive", cli + ["projector", "archive", "--archive-dir", str(s.data_dir / "archive")]),
        ("decider", cli + ["decider"]),
        ("watchdog", cli + ["watchdog"]),
    ]
    for i in range(1, s.agents + 1):
        specs.append(
            (
                f"agent-node-{i}",
                cli
                + [
                    "agent",
                    "--node",
                    f"node-{i}",
                    "--slots",
                    str(s.slots),
                    "--workdir",
                    str(s.data_dir / "work"),
                ],
            )
        )
    return [(n, c + ["--nats-url", url, "--ready-file", str(run / f"{n}.ready")]) for n, c in specs]


def up(s: UpSettings) -> Manifest:
    """Start an instance and return once every process is ready."""
    existing = read_manifest(s.data_dir)
    if existing and any(_is_ours(p) for p in existing.processes):
        raise ServerError(
            f"an instance is already running from {s.data_dir} (run `niyantra down --data-dir {s.data_dir}`)"
        )
    run, logs = s.data_dir / "run", s.data_dir / "logs"
    run.mkdir(parents=True, exist_ok=True)
    for f in run.glob("*.ready"):
        f.unlink()
    http_port = _free_port(s.port + 4000)
    args = server_args(
        config=s.config or default_config(), port=s.port, http_port=http_port, store_dir=s.data_dir / "jetstream"
    )
    server = start_server(args, logs / "nats-server.log", store_dir=s.data_dir / "jetstream")
    _SPAWNED.append(server.process)
    m = Manifest(
        server.url,
        http_port,
        [
            Started(
                "nats-server",
                server.process.pid,
                psutil.Process(server.process.pid).create_time(),
                str(server.log_path),
            )
        ],
    )
    _write_manifest(s.data_dir, m)
    try:
        for name, cmd in child_specs(s, server.url, run):
            log_path = logs / f"{name}.log"
            with log_path.open("ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
            _SPAWNED.append(proc)
            m.processes.append(Started(name, proc.pid, psutil.Process(proc.pid).create_time(), str(log_path)))
            _write_manifest(s.data_dir, m)
        _wait_ready(m, run, s.ready_timeout_s)
    except (ServerError, OSError, psutil.Error):
        down(s.data_dir)
        raise
    return m


def _wait_ready(m: Manifest, run: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = [p for p in m.processes if p.name != "nats-server"]
    while waiting:
        for p in list(waiting):
            if (run / f"{p.name}.ready").exists():
                waiting.remove(p)
            elif _is_ours(p) is None or _is_ours(p).status() == psutil.STATUS_ZOMBIE:  # type: ignore[union-attr]
                tail = Path(p.log).read_text(errors="replace")[-800:]
                raise ServerError(f"{p.name} exited during start-up; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise ServerError(f"not ready after {timeout}s: {', '.join(p.name for p in waiting)}")
        time.sleep(0.05)


def down(data_dir: Path, *, grace_s: float = 10.0) -> list[str]:
    """Stop exactly the processes ``up`` recorded (agents first, the server last)."""
    m = read_manifest(data_dir)
    if m is None:
        return []
    stopped: list[str] = []
    order = [p for p in reversed(m.processes) if p.name != "nats-server"]
    order += [p for p in m.processes if p.name == "nats-server"]
    for group in (order[:-1], order[-1:]):
        procs = [(p, _is_ours(p)) for p in group]
        live = [(p, proc) for p, proc in procs if proc is not None]
        for _, proc in live:
            proc.send_signal(signal.SIGTERM)
        gone, alive = psutil.wait_procs([proc for _, proc in live], timeout=grace_s)
        for proc in alive:
            proc.kill()
        psutil.wait_procs(alive, timeout=grace_s)
        stopped += [p.name for p, _ in live]
    manifest_path(data_dir).unlink(missing_ok=True)
    return stopped

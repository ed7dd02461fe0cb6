"""``niyantra up`` / ``down``: start nats-server, projectors, decider and agents as separate OS
processes under one data directory, record exactly what was started, and stop exactly that.
With ``autoscale`` the decider's scaling hook is `orchestrator.runtime.autoscale`, which starts
agents (`start_agents`) and stops them (`forget` drops them from the record) as proposals ask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psutil

from orchestrator.errors import ServerError
from orchestrator.runtime.auth import ADMIN, DECIDER, PROJECTOR, write_auth
from orchestrator.runtime.cluster import create_assets, member_args, plan_cluster, start_member, wait_meta_leader
from orchestrator.runtime.connection import ENV_PASSWORD, ENV_REPLICAS, ENV_USER
from orchestrator.runtime.natsserver import RunningServer, default_config, server_args, start_server
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.scaleconfig import DECIDER_TOML, AutoscaleSettings, decider_toml, hook_command, write_settings

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
    auth: bool = False  # per-role users (orchestrator/runtime/auth.py); credentials in D/run/credentials.json
    cluster: int = 1  # servers: 1 is the embedded server; 3 is a JetStream cluster with R3 streams and views
    decider_config: Path | None = None  # a TOML [decider] table for the decider (docs/actions.md)
    autoscale: AutoscaleSettings | None = None  # follow scaling proposals with local agents (`autoscale`)


@dataclass
class Started:
    """One process ``up`` started: enough to find exactly it again (pid + start time)."""

    name: str
    pid: int
    create_time: float
    log: str
    cmd: list[str] = field(default_factory=list)  # servers: to restart one exactly as `up` started it
    store: str = ""


@dataclass
class Manifest:
    """Everything an instance consists of, written to ``<data-dir>/run/processes.json``."""

    url: str
    http_port: int
    processes: list[Started] = field(default_factory=list)


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


def _is_server(p: Started) -> bool:
    return p.name.startswith("nats-server")


def is_ours(p: Started) -> psutil.Process | None:
    """The live process ``p`` records (the same pid and start time), or None."""
    try:
        proc = psutil.Process(p.pid)
        if abs(proc.create_time() - p.create_time) < 0.01:
            return proc
    except psutil.NoSuchProcess:
        pass
    return None


def child_specs(s: UpSettings, url: str, run: Path) -> list[tuple[str, list[str]]]:
    """The commands ``up`` runs after the server, each with its ready file."""
    cli = [sys.executable, "-m", "orchestrator.cli.main"]
    specs = [
        ("projector-readiness", cli + ["projector", "readiness"]),
        ("projector-node-scores", cli + ["projector", "node-scores"]),
        ("projector-confidence", cli + ["projector", "confidence"]),
        ("projector-archive", cli + ["projector", "archive", "--archive-dir", str(s.data_dir / "archive")]),
        ("decider", cli + ["decider", *_decider_config_args(s, run)]),
        ("watchdog", cli + ["watchdog"]),
    ]
    specs += [agent_spec(s.data_dir, f"node-{i}", s.slots) for i in range(1, s.agents + 1)]
    return [(n, c + ["--nats-url", url, "--ready-file", str(run / f"{n}.ready")]) for n, c in specs]


def agent_spec(data_dir: Path, node: str, slots: int, labels: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The name and command (without its URL and ready file) of one agent of the instance."""
    cli = [sys.executable, "-m", "orchestrator.cli.main", "agent", "--node", node, "--slots", str(slots)]
    cli += [a for k, v in sorted((labels or {}).items()) for a in ("--label", f"{k}={v}")]
    return f"agent-{node}", cli + ["--workdir", str(data_dir / "work")]


def _decider_config_args(s: UpSettings, run: Path) -> list[str]:
    if s.autoscale is not None:
        return ["--config", str(run / DECIDER_TOML)]
    return ["--config", str(s.decider_config)] if s.decider_config is not None else []


def _write_autoscale(s: UpSettings, url: str, run: Path) -> None:
    """The autoscale hook's settings and the decider config that names it (with the user's table)."""
    import tomllib

    assert s.autoscale is not None
    try:
        table = tomllib.loads(s.decider_config.read_text()).get("decider", {}) if s.decider_config else {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ServerError(f"{s.decider_config}: {e}") from e
    write_settings(s.data_dir, replace(s.autoscale, url=url))
    (run / DECIDER_TOML).write_text(decider_toml(table, hook_command(s.data_dir)))


def _spawn(data_dir: Path, m: Manifest, name: str, cmd: list[str], env: dict[str, str]) -> None:
    """Start one child with its log, and record it in the manifest."""
    log_path = data_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    _SPAWNED.append(proc)
    m.processes.append(Started(name, proc.pid, psutil.Process(proc.pid).create_time(), str(log_path)))
    _write_manifest(data_dir, m)


def start_agents(
    data_dir: Path, url: str, agents: list[tuple[str, int, dict[str, str]]], timeout: float = 60.0
) -> None:
    """Start more agents (node id, slots, labels) for a running instance; return once they are ready."""
    m = read_manifest(data_dir)
    if m is None:
        raise ServerError(f"no instance running from {data_dir}")
    run, before = data_dir / "run", len(m.processes)
    for node, slots, labels in agents:
        name, cmd = agent_spec(data_dir, node, slots, labels)
        (run / f"{name}.ready").unlink(missing_ok=True)
        cmd += ["--nats-url", url, "--ready-file", str(run / f"{name}.ready")]
        _spawn(data_dir, m, name, cmd, {**os.environ})
    _wait_ready(Manifest(m.url, m.http_port, m.processes[before:]), run, timeout)


def forget(data_dir: Path, name: str) -> None:
    """Drop a stopped child from the manifest (`down` no longer looks for it)."""
    m = read_manifest(data_dir)
    if m is not None:
        m.processes = [p for p in m.processes if p.name != name]
        _write_manifest(data_dir, m)


def up(s: UpSettings) -> Manifest:
    """Start an instance and return once every process is ready."""
    if s.autoscale is not None and s.auth:
        raise ServerError("--autoscale with --auth: the agents' NATS users are fixed at start; use one or the other")
    existing = read_manifest(s.data_dir)
    if existing and any(is_ours(p) for p in existing.processes):
        raise ServerError(
            f"an instance is already running from {s.data_dir} (run `niyantra down --data-dir {s.data_dir}`)"
        )
    run, logs = s.data_dir / "run", s.data_dir / "logs"
    run.mkdir(parents=True, exist_ok=True)
    for f in run.glob("*.ready"):
        f.unlink()
    m = Manifest("", 0)
    creds: dict[str, str] = {}
    if s.auth:
        nodes = [f"node-{i}" for i in range(1, s.agents + 1)]
        config, creds = write_auth(run, s.config or default_config(), nodes)
        s = replace(s, config=config)
    try:
        _start_servers(s, m, logs, creds)
        if s.autoscale is not None:
            _write_autoscale(s, m.url, run)
        for name, cmd in child_specs(s, m.url, run):
            _spawn(s.data_dir, m, name, cmd, {**os.environ, ENV_REPLICAS: str(s.cluster), **_login_env(name, creds)})
        _wait_ready(m, run, s.ready_timeout_s)
    except (ServerError, OSError, psutil.Error):
        down(s.data_dir)
        raise
    return m


def _started(name: str, server: RunningServer, cmd: list[str], store: Path) -> Started:
    _SPAWNED.append(server.process)
    created = psutil.Process(server.process.pid).create_time()
    return Started(name, server.process.pid, created, str(server.log_path), cmd, str(store))


def _login_env(child: str, creds: dict[str, str]) -> dict[str, str]:
    """The NATS user a child process runs as (none when auth is off)."""
    if not creds:
        return {}
    user = PROJECTOR if child.startswith("projector-") else child if child.startswith("agent-") else DECIDER
    return {ENV_USER: user, ENV_PASSWORD: creds[user]}


def _start_servers(s: UpSettings, m: Manifest, logs: Path, creds: dict[str, str]) -> None:
    """Start the one server, or the cluster's members (then wait for their meta leader)."""
    config = s.config or default_config()
    if s.cluster == 1:
        m.http_port = free_port(s.port + 4000)
        store = s.data_dir / "jetstream"
        args = server_args(config=config, port=s.port, http_port=m.http_port, store_dir=store)
        server = start_server(args, logs / "nats-server.log", store_dir=store)
        m.url = server.url
        m.processes.append(_started("nats-server", server, args, store))
        _write_manifest(s.data_dir, m)
        if creds:  # only admin creates streams: make them before any other role connects
            create_assets(m.url, 1, s.ready_timeout_s, _admin(creds))
        return
    members = plan_cluster(s.data_dir, s.cluster, s.port)
    urls = []
    for i, member in enumerate(members, 1):
        args = member_args(config, member, members)
        server = start_member(args, member, logs)
        urls.append(server.url)
        m.processes.append(_started(f"nats-server-{i}", server, args, member.store_dir))
        _write_manifest(s.data_dir, m)
    m.url, m.http_port = ",".join(urls), members[0].http_port
    _write_manifest(s.data_dir, m)
    wait_meta_leader(members, s.ready_timeout_s)
    create_assets(m.url, s.cluster, s.ready_timeout_s, _admin(creds))


def _admin(creds: dict[str, str]) -> dict[str, str]:
    return {"user": ADMIN, "password": creds[ADMIN]} if creds else {}


def restart_server(data_dir: Path, name: str) -> Started:
    """Start the recorded server ``name`` again, exactly as `up` did (after a crash or a kill)."""
    m = read_manifest(data_dir)
    found = [p for p in (m.processes if m else []) if p.name == name and p.cmd]
    if m is None or not found:
        raise ServerError(f"no server named {name!r} recorded in {manifest_path(data_dir)}")
    old = found[0]
    if is_ours(old) is not None:
        raise ServerError(f"{name} is still running (pid {old.pid})")
    server = _start_on_its_port(old.cmd, Path(old.log), Path(old.store))
    new = _started(name, server, old.cmd, Path(old.store))
    m.processes[m.processes.index(old)] = new
    _write_manifest(data_dir, m)
    return new


def _start_on_its_port(cmd: list[str], log: Path, store: Path, timeout: float = 30.0) -> RunningServer:
    """Start a recorded server; while its port is still held by someone else, try again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return start_server(cmd, log, store_dir=store)
        except ServerError as e:
            if "address already in use" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _wait_ready(m: Manifest, run: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = [p for p in m.processes if not _is_server(p)]
    while waiting:
        for p in list(waiting):
            if (run / f"{p.name}.ready").exists():
                waiting.remove(p)
            elif is_ours(p) is None or is_ours(p).status() == psutil.STATUS_ZOMBIE:  # type: ignore[union-attr]
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
    clients = [p for p in reversed(m.processes) if not _is_server(p)]
    for group in (clients, [p for p in m.processes if _is_server(p)]):
        procs = [(p, is_ours(p)) for p in group]
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

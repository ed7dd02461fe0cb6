"""A chaos run: `niyantra up`, a graph of no-op tasks, seeded faults at random moments, checks.

Real processes and a real nats-server (or three): `up` starts everything, this module kills
(SIGKILL), restarts, pauses (SIGSTOP past the node's lease) and resumes them while the run
goes on, then checks the whole log: every task done exactly once (one successful completion
per task; the poison and hung tasks fail once and cancel their dependents), `niyantra verify`
reports no violation, nothing is malformed, every process is alive. Used by the CI tests in
this directory (small plans) and by ``scripts/chaos`` (long plans, JSON summary).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nats
import nats.errors
import psutil

from orchestrator.runtime.auth import ADMIN, DECIDER, PROJECTOR, inbox_prefix, read_credentials
from orchestrator.runtime.connection import ENV_PASSWORD, ENV_REPLICAS, ENV_USER
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import (
    Manifest,
    Started,
    UpSettings,
    _write_manifest,
    child_specs,
    down,
    read_manifest,
    restart_server,
    up,
)
from schemas import subjects as S
from tests.chaos.plan import GRAPH, ChaosPlan, Fault, build_graph, plan_faults


class Chaos:
    """One running instance under fault injection."""

    def __init__(self, plan: ChaosPlan, data_dir: Path) -> None:
        self.plan = plan
        self.data = data_dir
        self.settings = UpSettings(
            data_dir=data_dir,
            port=free_port(),
            agents=plan.agents,
            slots=plan.slots,
            auth=plan.auth,
            cluster=plan.cluster,
        )
        self.m: Manifest | None = None
        self.creds: dict[str, str] = {}
        self.t0 = self._last_note = 0.0
        self.restarted: dict[str, list[subprocess.Popen[bytes]]] = {}  # every child this run started again

    # --- processes ---------------------------------------------------------------------------

    def start(self) -> Manifest:
        """``up``; remember the credentials."""
        self.m = up(self.settings)
        if self.plan.auth:
            self.creds = read_credentials(self.data / "run")
        return self.m

    def _process(self, name: str) -> Started:
        m = read_manifest(self.data)
        assert m is not None, "the instance's manifest is gone"
        return next(p for p in m.processes if p.name == name)

    def _env(self, name: str) -> dict[str, str]:
        env = {**os.environ, ENV_REPLICAS: str(self.plan.cluster)}
        if self.creds:
            user = PROJECTOR if name.startswith("projector-") else name if name.startswith("agent-") else DECIDER
            env |= {ENV_USER: user, ENV_PASSWORD: self.creds[user]}
        return env

    def admin_env(self) -> dict[str, str]:
        """The environment a CLI command needs to read everything."""
        env = dict(os.environ)
        if self.creds:
            env |= {ENV_USER: ADMIN, ENV_PASSWORD: self.creds[ADMIN]}
        return env

    @contextlib.contextmanager
    def as_admin(self) -> Iterator[None]:
        """Log in-process readers (which take the login from the environment) in as admin, then undo it."""
        saved = {k: os.environ.get(k) for k in (ENV_USER, ENV_PASSWORD)}
        os.environ.update({k: v for k, v in self.admin_env().items() if k in saved})
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def kill(self, name: str) -> None:
        """SIGKILL a process and wait until it is gone."""
        p = self._process(name)
        try:
            proc = psutil.Process(p.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        except psutil.NoSuchProcess:
            pass

    def restart(self, name: str) -> None:
        """Start a child again exactly as ``up`` did (same command, user and log); record it."""
        assert self.m is not None
        if name.startswith("nats-server"):
            restart_server(self.data, name)
            return
        cmd = dict(child_specs(self.settings, self.m.url, self.data / "run"))[name]
        (self.data / "run" / f"{name}.ready").unlink(missing_ok=True)
        log = self.data / "logs" / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, env=self._env(name)
            )
        _SPAWNED.append(proc)
        self.restarted.setdefault(name, []).append(proc)
        m = read_manifest(self.data)
        assert m is not None
        i = next(i for i, p in enumerate(m.processes) if p.name == name)
        m.processes[i] = Started(name, proc.pid, psutil.Process(proc.pid).create_time(), str(log))
        _write_manifest(self.data, m)

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to a recorded process."""
        os.kill(self._process(name).pid, sig)

    def alive(self) -> dict[str, bool]:
        """Each recorded process: running (not a zombie, not stopped) and ready."""
        m = read_manifest(self.data)
        assert m is not None
        out = {}
        for p in m.processes:
            try:
                proc = psutil.Process(p.pid)
                ok = abs(proc.create_time() - p.create_time) < 0.01 and proc.status() not in (
                    psutil.STATUS_ZOMBIE,
                    psutil.STATUS_STOPPED,
                )
            except psutil.NoSuchProcess:
                ok = False
            ready = p.name.startswith("nats-server") or (self.data / "run" / f"{p.name}.ready").exists()
            out[p.name] = ok and ready
        return out

    def finish(self) -> None:
        """Resume anything paused, then ``down``: stop exactly what was started."""
        m = read_manifest(self.data)
        for p in m.processes if m else []:
            with contextlib.suppress(psutil.Error):  # a paused process cannot handle `down`'s SIGTERM
                proc = psutil.Process(p.pid)
                if abs(proc.create_time() - p.create_time) < 0.01:
                    proc.send_signal(signal.SIGCONT)
        down(self.data)
        for proc in _SPAWNED:
            proc.poll()

    # --- reading the log ---------------------------------------------------------------------

    async def _connect(self) -> Any:
        assert self.m is not None
        login: dict[str, Any] = {}
        if self.creds:
            login = {"user": ADMIN, "password": self.creds[ADMIN], "inbox_prefix": inbox_prefix(ADMIN)}
        return await nats.connect(servers=self.m.url.split(","), connect_timeout=2, allow_reconnect=False, **login)

    async def _progress(self) -> int | None:
        """Tasks with at least one completion recorded; None while no server answers."""
        try:
            nc = await self._connect()
        except (OSError, nats.errors.Error):
            return None
        try:
            info = await nc.jetstream().stream_info(
                S.STREAM, subjects_filter=f"{S.ROOT}.task.{GRAPH}.*.TaskCompleted.*"
            )
            return len({s.split(".")[3] for s in (info.state.subjects or {})})
        except (OSError, nats.errors.Error, TimeoutError):
            return None
        finally:
            await nc.close()

    def progress(self) -> int | None:
        """Tasks with at least one completion recorded (None while no server answers)."""
        return asyncio.run(self._progress())

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run a niyantra command against this instance as admin."""
        assert self.m is not None
        cmd = [sys.executable, "-m", "orchestrator.cli.main", *args, "--nats-url", self.m.url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.admin_env())

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Submit, inject every fault at its moment, wait for the end, check; return the summary."""
        assert self.m is not None
        rng = random.Random(self.plan.seed)
        servers = [p.name for p in self.m.processes if p.name.startswith("nats-server")]
        faults = plan_faults(self.plan, rng, servers)
        graph, expected = build_graph(self.plan)
        graph_file = graph.save(self.data / "chaos-graph.json")
        self.t0 = self._last_note = time.monotonic()
        submitted = self.cli("submit", str(graph_file))
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        total = sum(1 for end in expected.values() if end != "cancelled")  # tasks that complete at least once
        pending_restarts: list[Fault] = []
        deadline = self.t0 + self.plan.timeout_s
        done = 0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"chaos run not finished within {self.plan.timeout_s}s: {done} of {total} done")
            seen = self.progress()
            done = seen if seen is not None else done
            if int(now - self.t0) // 10 != int(self._last_note - self.t0) // 10:
                self._last_note = now
                print(f"chaos: {now - self.t0:.0f}s {done}/{total} done", file=sys.stderr, flush=True)
            for f in [f for f in faults if f.fired_at_s is None and done >= f.at_fraction * total]:
                if any(p.target == f.target for p in pending_restarts):
                    continue  # its last fault is not recovered yet: two restarts would start it twice
                self._fire(f, now, done)
                pending_restarts.append(f)
            for f in [f for f in pending_restarts if now - self.t0 >= (f.fired_at_s or 0) + f.restart_after_s]:
                self._recover(f)
                f.restarted_at_s = round(time.monotonic() - self.t0, 2)
                pending_restarts.remove(f)
            if not pending_restarts and all(f.fired_at_s is not None for f in faults) and done >= total:
                break
            time.sleep(0.2)
        wall = time.monotonic() - self.t0
        return {"plan": asdict(self.plan), "wall_s": round(wall, 2), "faults": [asdict(f) for f in faults]}

    def _fire(self, f: Fault, now: float, done: int) -> None:
        f.fired_at_s, f.fired_at_done = round(now - self.t0, 2), done
        if f.kind == "pause":
            self.signal(f.target, signal.SIGSTOP)
        else:
            self.kill(f.target)

    def _recover(self, f: Fault) -> None:
        if f.kind == "pause":
            self.signal(f.target, signal.SIGCONT)
        else:
            self.restart(f.target)


_SPAWNED: list[subprocess.Popen[bytes]] = []  # restarted children: kept so Python does not warn


async def _events(chaos: Chaos) -> tuple[list[tuple[int, Any]], int]:
    from orchestrator.cli.ops import _all_events

    assert chaos.m is not None
    with chaos.as_admin():
        return await _all_events(chaos.m.url)


async def _states(chaos: Chaos, graph: str = GRAPH) -> dict[str, str]:
    """Each task's state in the readiness view."""
    from orchestrator.reports.queries import read_status

    nc = await chaos._connect()
    try:
        report = await read_status(nc, graph)
    finally:
        await nc.close()
    return {t["id"]: t["state"] for t in report.tasks}


def settle(chaos: Chaos, expected: dict[str, str], timeout: float) -> dict[str, Any]:
    """Wait until every task reached its end in the log; return what the log says."""
    from schemas import events as ev

    deadline = time.monotonic() + timeout
    while True:
        events, malformed = asyncio.run(_events(chaos))
        success: Counter[str] = Counter()
        dispatches = lost = 0
        nodes_lost = sorted({e.node_id for _, e in events if isinstance(e, ev.NodeLost)})
        for _, e in events:
            if getattr(e, "graph_id", None) != GRAPH:
                continue
            match e:
                case ev.TaskCompleted(phase="run", outcome=outcome, task_id=t) if outcome != "failure":
                    success[t] += 1
                case ev.TaskDispatched(phase="run"):
                    dispatches += 1
                case ev.TaskLost():
                    lost += 1
        states = asyncio.run(_states(chaos))
        finished = all(states.get(t) == want for t, want in expected.items())
        if finished or time.monotonic() > deadline:
            return {
                "events": len(events),
                "malformed": malformed,
                "success_per_task": success,
                "states": {t: states.get(t, "?") for t in expected},
                "dispatches": dispatches,
                "lost": lost,
                "nodes_lost": nodes_lost,
                "finished": finished,
            }
        time.sleep(1.0)


def check(chaos: Chaos, expected: dict[str, str], summary: dict[str, Any], settle_s: float = 60.0) -> dict[str, Any]:
    """Every task done exactly once, verify clean, every process alive; add the figures to ``summary``."""
    seen = settle(chaos, expected, settle_s)
    verify = chaos.cli("verify", "--json")
    report = json.loads(verify.stdout) if verify.stdout.strip().startswith("{") else {"violations": [verify.stderr]}
    wrong_end = {t: s for t, s in seen["states"].items() if s != expected[t]}
    twice = {t: n for t, n in seen["success_per_task"].items() if n != 1}
    missing = [t for t, want in expected.items() if want == "succeeded" and seen["success_per_task"][t] != 1]
    alive = chaos.alive()
    summary |= {
        "tasks": len(expected),
        "events": seen["events"],
        "dispatches": seen["dispatches"],
        "lost_attempts": seen["lost"],
        "nodes_lost": seen["nodes_lost"],  # the watchdog's verdicts (a paused agent past its lease)
        "tasks_per_s": round(len(expected) / summary["wall_s"], 1),
        "malformed": seen["malformed"],
        "wrong_end": wrong_end,
        "succeeded_more_than_once": twice,
        "not_succeeded_once": missing[:20],
        "verify_violations": report.get("violations", []),
        "verify_checked": {k: v["checks"] for k, v in report.get("checked", {}).items()},
        "dead_processes": sorted(n for n, ok in alive.items() if not ok),
        # a restart that left an earlier copy running (down would stop only the recorded one)
        "running_twice": sorted(n for n, ps in chaos.restarted.items() if sum(p.poll() is None for p in ps) > 1),
    }
    summary["ok"] = not (
        wrong_end
        or twice
        or missing
        or summary["verify_violations"]
        or seen["malformed"]
        or summary["dead_processes"]
        or summary["running_twice"]
    )
    return summary


def run_plan(plan: ChaosPlan, data_dir: Path) -> dict[str, Any]:
    """One whole chaos run (up, faults, checks, down); the JSON-able summary."""
    chaos = Chaos(plan, data_dir)
    try:
        chaos.start()
        summary = chaos.run()
        _, expected = build_graph(plan)
        return check(chaos, expected, summary)
    finally:
        chaos.finish()

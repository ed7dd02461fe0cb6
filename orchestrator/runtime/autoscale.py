"""`niyantra up --autoscale`: the scaling hook's local form. ``up`` gives the decider a config
whose ``[decider.scaling] command`` is ``niyantra autoscale --data-dir D``; that command reads
each recorded proposal as the same JSON any hook gets and acts on this instance's agents:

- a `NodeScaleUpProposed` made at full autonomy (``start``) starts the agents its ``needs`` name
  (each need's labels, ``--slots`` of the instance), up to ``max_agents`` agents running in all;
- a `NodeScaleDownProposed` made at full autonomy (``drain``) of one of this instance's agents
  drains it (`NodeDrainRequested`, by ``autoscale``), waits until its node view holds no attempt,
  then stops its process; at least ``min_agents`` keep running.

A proposal made at a lower autonomy is only reported. Which agents to start or stop is pure
(`plan_up`, `plan_down`); the rule that made the proposal is the decider's alone. The agents
started are added to the instance's manifest (under a lock: hooks may run at once), so
`niyantra down` stops them too.
"""

from __future__ import annotations

import asyncio
import fcntl
import re
import signal
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psutil
from nats.js.errors import KeyNotFoundError

from orchestrator.errors import ServerError
from orchestrator.runtime.scaleconfig import AutoscaleSettings, read_settings
from orchestrator.runtime.supervisor import forget, is_ours, read_manifest, start_agents

AGENT = re.compile(r"^agent-(node-(\d+))$")


def plan_up(proposal: Mapping[str, Any], running: int, max_agents: int) -> list[dict[str, str]]:
    """The labels of each agent to start for a scale-up proposal (none unless it says ``start``)."""
    if not proposal.get("start"):
        return []
    out: list[dict[str, str]] = []
    room = max_agents - running
    for need in proposal.get("needs", ()):
        for _ in range(int(need.get("nodes", 0))):
            if len(out) >= room:
                return out
            out.append(dict(need.get("labels", {})))
    return out


def plan_down(proposal: Mapping[str, Any], agents: Sequence[str], min_agents: int) -> str | None:
    """The agent to stop for a scale-down proposal: its node, if it is one of ``agents`` (node
    ids running here), the proposal says ``drain``, and more than ``min_agents`` run."""
    node = proposal.get("node_id", "")
    if not proposal.get("drain") or node not in agents or len(agents) <= min_agents:
        return None
    return str(node)


@contextmanager
def _locked(run: Path) -> Iterator[None]:
    run.mkdir(parents=True, exist_ok=True)
    with (run / "manifest.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _agents(data_dir: Path) -> dict[str, Any]:
    """This instance's running agents: node id → its manifest entry."""
    m = read_manifest(data_dir)
    out = {}
    for p in m.processes if m else []:
        match = AGENT.match(p.name)
        if match and is_ours(p) is not None:
            out[match.group(1)] = p
    return out


def _next_ids(data_dir: Path, n: int) -> list[str]:
    m = read_manifest(data_dir)
    used = [int(x.group(2)) for p in (m.processes if m else []) if (x := AGENT.match(p.name))]
    top = max(used, default=0)
    return [f"node-{top + i}" for i in range(1, n + 1)]


def scale_up(data_dir: Path, s: AutoscaleSettings, proposal: Mapping[str, Any]) -> str:
    """Start the agents a scale-up proposal asks for (within ``max_agents``); what was done, in words."""
    with _locked(data_dir / "run"):
        running = len(_agents(data_dir))
        plan = plan_up(proposal, running, s.max_agents)
        if not plan:
            why = "not made at full autonomy" if not proposal.get("start") else f"{running} of {s.max_agents} running"
            return f"scale-up of {proposal.get('nodes', 0)} node(s) not followed: {why}"
        nodes = _next_ids(data_dir, len(plan))
        start_agents(data_dir, s.url, [(n, s.slots, labels) for n, labels in zip(nodes, plan, strict=True)])
    return f"started {', '.join(nodes)} ({running + len(nodes)} of at most {s.max_agents} agents)"


def scale_down(data_dir: Path, s: AutoscaleSettings, proposal: Mapping[str, Any]) -> str:
    """Drain, then stop, the agent a scale-down proposal names (if ours, and ``min_agents`` stay)."""
    with _locked(data_dir / "run"):
        agents = _agents(data_dir)
        node = plan_down(proposal, sorted(agents), s.min_agents)
        if node is None:
            return f"scale-down of {proposal.get('node_id', '?')} not followed ({len(agents)} agents running here)"
        asyncio.run(_drain(s.url, node, s.drain_timeout_s))
        p = agents[node]
        proc = psutil.Process(p.pid)
        proc.send_signal(signal.SIGTERM)
        psutil.wait_procs([proc], timeout=10.0)
        if proc.is_running():
            proc.kill()
        forget(data_dir, p.name)
    return f"drained and stopped {node} ({len(agents) - 1} agents left)"


async def _drain(url: str, node: str, timeout: float) -> None:
    """Ask ``node`` to drain, and wait until its node view holds no attempt and says it is draining."""
    from orchestrator.runtime.connection import connect
    from orchestrator.writeside.eventlog import EventLog
    from projections.node_scores.entries import NodeView
    from schemas import events as ev
    from schemas import subjects as S

    nc = await connect(url)
    try:
        e = ev.NodeDrainRequested(
            event_id=f"drain:{node}:{uuid.uuid4().hex}",
            occurred_at=datetime.now(UTC),  # pure-ok: a shell's clock
            node_id=node,
            by="autoscale",
            reason="scale-down proposal followed by up --autoscale",
        )
        await EventLog(nc).append_event(e)
        kv = await nc.jetstream().key_value(S.KV_NODE_SCORES)
        deadline = time.monotonic() + timeout
        while True:
            try:
                entry = await kv.get(S.node_key(node))
            except KeyNotFoundError:
                entry = None
            view = msgspec.json.decode(entry.value, type=NodeView) if entry and entry.value else None
            if view is not None and view.draining and not view.active:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{node} still holds {len(view.active) if view else '?'} attempt(s) after {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


def follow(data_dir: Path, proposal: Mapping[str, Any]) -> str:
    """Act on one proposal (the hook's JSON) for the instance in ``data_dir``."""
    s = read_settings(data_dir)
    kind = proposal.get("type")
    if kind == "NodeScaleUpProposed":
        return scale_up(data_dir, s, proposal)
    if kind == "NodeScaleDownProposed":
        return scale_down(data_dir, s, proposal)
    raise ServerError(f"autoscale: not a scaling proposal: type {kind!r}")

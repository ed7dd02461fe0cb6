"""A JetStream cluster of N nats-servers on loopback, each from the same nats.conf.

Every member runs ``nats-server -c nats.conf`` plus flags that name it, give it its own client,
monitoring and route ports, and list every member's route URL (a member ignores its own). The
same flags with real host names make a cluster across machines (see README, "A cluster").
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nats.errors

from node_agent.errors import AgentError
from orchestrator.errors import OrchestratorError, ServerError
from orchestrator.runtime.natsserver import RunningServer, server_args, start_server
from orchestrator.runtime.ports import free_port

CLUSTER_NAME = "niyantra"


@dataclass(frozen=True)
class Member:
    """One cluster member's name, ports and store directory."""

    name: str
    port: int
    http_port: int
    route_port: int
    store_dir: Path


def plan_cluster(data_dir: Path, size: int, base_port: int) -> list[Member]:
    """Names, ports (``base_port``+i preferred) and store dirs ``D/jetstream-N`` of ``size`` members."""
    if not 1 <= size <= 5:
        raise ServerError(f"--cluster must be 1 to 5 servers, got {size}")
    return [
        Member(
            f"{CLUSTER_NAME}-{i}",
            free_port(base_port + i - 1),
            free_port(base_port + 4000 + i - 1),
            free_port(base_port + 2000 + i - 1),
            data_dir / f"jetstream-{i}",
        )
        for i in range(1, size + 1)
    ]


def member_args(config: Path, member: Member, members: list[Member]) -> list[str]:
    """nats-server's command line for one member."""
    routes = ",".join(f"nats://127.0.0.1:{m.route_port}" for m in members)
    extra = (
        "--name",
        member.name,
        "--cluster_name",
        CLUSTER_NAME,
        "--cluster",
        f"nats://127.0.0.1:{member.route_port}",
        "--routes",
        routes,
    )
    return server_args(
        config=config, port=member.port, http_port=member.http_port, store_dir=member.store_dir, extra=extra
    )


def start_member(args: list[str], member: Member, logs: Path) -> RunningServer:
    """Start one member (also to restart it after a crash: same args, same store)."""
    return start_server(args, logs / f"nats-server-{member.name}.log", store_dir=member.store_dir)


def _meta_leader(http_port: int) -> tuple[str, int]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/jsz", timeout=2) as r:
            meta = json.loads(r.read()).get("meta_cluster") or {}
    except (OSError, urllib.error.URLError, ValueError):
        return "", 0
    return str(meta.get("leader") or ""), int(meta.get("cluster_size") or len(meta.get("replicas") or []) + 1)


def wait_meta_leader(members: list[Member], timeout: float) -> str:
    """Wait until every member knows the same JetStream meta leader; return its name."""
    deadline = time.monotonic() + timeout
    seen: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        seen = [_meta_leader(m.http_port) for m in members]
        leaders = {leader for leader, _ in seen}
        if len(leaders) == 1 and "" not in leaders and all(size == len(members) for _, size in seen):
            return leaders.pop()
        time.sleep(0.1)
    raise ServerError(f"the JetStream cluster elected no common leader within {timeout}s (seen: {seen})")


async def _create_assets(url: str, replicas: int, login: dict[str, str]) -> None:
    from node_agent.artifacts.store import ArtifactStore, StoreSettings
    from node_agent.logstore import LogStore
    from orchestrator.runtime.connection import connect
    from orchestrator.writeside.eventlog import EventLog
    from projections.archive.location import ensure_instance_bucket
    from projections.buckets import ensure_bucket
    from schemas import subjects as S

    nc = await connect(url, connect_timeout=5, allow_reconnect=False, **login)
    try:
        await EventLog(nc).ensure_stream(replicas=replicas)
        await LogStore(nc).ensure_stream(replicas=replicas)
        await ArtifactStore(nc, StoreSettings(replicas=replicas)).ensure_bucket()
        for bucket in S.VIEW_BUCKETS:
            await ensure_bucket(nc, bucket, replicas=replicas)
        await ensure_instance_bucket(nc, replicas=replicas)
    finally:
        await nc.close()


def create_assets(url: str, replicas: int, timeout: float, login: dict[str, str] | None = None) -> None:
    """Create the EVENTS and LOGS streams, the artifact bucket, every view bucket and the instance bucket at
    ``replicas`` before any client starts (a fresh cluster answers concurrent creates of one R3 stream
    slowly; one creator avoids that).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(_create_assets(url, replicas, login or {}))
            return
        except (OrchestratorError, AgentError, OSError, nats.errors.Error) as e:
            if time.monotonic() > deadline:
                raise ServerError(f"cannot create the streams and view buckets on {url}: {e!r}") from e
            time.sleep(0.2)

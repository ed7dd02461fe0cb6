"""The artifact bucket on a 3-server cluster: R3 like EVENTS, and every server hands out verified blobs."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import nats
import pytest

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.store import ArtifactStore
from orchestrator.runtime.cluster import create_assets, member_args, plan_cluster, start_member, wait_meta_leader
from orchestrator.runtime.natsserver import default_config
from orchestrator.runtime.ports import free_port
from schemas import subjects as S

pytestmark = pytest.mark.timeout(120)


async def round_trips(urls: list[str], tmp: Path) -> tuple[int, list[int]]:
    first = await nats.connect(urls[0])
    try:
        replicas = (await first.jetstream().stream_info(S.ARTIFACT_STREAM)).config.num_replicas
        store = ArtifactStore(first)
        blobs = []
        for i in range(3):
            src = tmp / f"out-{i}.o"
            src.write_bytes(os.urandom(2 * 1024 * 1024 + i))
            blobs.append((await store.put_file(src)).digest)
    finally:
        await first.close()
    sizes = []
    for j, url in enumerate(urls):  # each server's own clients, right after the writes
        nc = await nats.connect(url)
        try:
            cache = LocalCache(tmp / f"cache-{j}")
            for digest in blobs:
                path = await cache.ensure(digest, ArtifactStore(nc))
                assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
                sizes.append(path.stat().st_size)
        finally:
            await nc.close()
    return replicas, sizes


def test_the_bucket_has_three_replicas_and_any_server_serves_it(tmp_path):
    members = plan_cluster(tmp_path / "data", 3, free_port())
    servers = []
    try:
        for m in members:
            servers.append(start_member(member_args(default_config(), m, members), m, tmp_path / "logs"))
        wait_meta_leader(members, 30)
        urls = [f"nats://127.0.0.1:{m.port}" for m in members]
        create_assets(",".join(urls), 3, 30)
        replicas, sizes = asyncio.run(round_trips(urls, tmp_path))
        assert replicas == 3 and sorted(set(sizes)) == [2 * 1024 * 1024 + i for i in range(3)] and len(sizes) == 9
    finally:
        for s in servers:
            s.stop()

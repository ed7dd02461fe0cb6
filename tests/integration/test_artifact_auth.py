"""`up --auth`: an agent stores, fetches and withdraws artifacts with its own rights, and purges nothing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import nats
import pytest

from node_agent.artifacts.errors import BlobCorrupt
from node_agent.artifacts.store import ArtifactStore
from orchestrator.runtime.auth import inbox_prefix, read_credentials
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, up
from schemas import subjects as S
from tests.integration.test_permissions import try_everything

pytestmark = pytest.mark.timeout(120)


async def as_user(url: str, user: str, password: str) -> nats.NATS:
    return await nats.connect(url, user=user, password=password, inbox_prefix=inbox_prefix(user), allow_reconnect=False)


async def agent_round_trip(url: str, creds: dict[str, str], tmp: Path) -> None:
    agent = await as_user(url, "agent-node-1", creds["agent-node-1"])
    admin = await as_user(url, "admin", creds["admin"])
    try:
        store = ArtifactStore(agent)
        await store.ensure_bucket()  # up created it; the agent only opens it
        src = tmp / "libz.a"
        src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        assert (await store.put_file(src)).uploaded
        assert await store.fetch(digest, tmp / "back") == src.stat().st_size

        await (await admin.jetstream().object_store(S.ARTIFACT_BUCKET)).put(digest, b"planted")
        with pytest.raises(BlobCorrupt):
            await store.fetch(digest, tmp / "bad")
        assert await ArtifactStore(admin).stat(digest) is None  # the agent's marker withdrew it
        assert (await store.put_file(src)).uploaded  # and it stores the blob again, no purge needed

        js = admin.jetstream()
        config = (await js.stream_info(S.ARTIFACT_STREAM)).config
        config.allow_direct = False
        await js.update_stream(config)
        assert await store.fetch(digest, tmp / "via consumer") == src.stat().st_size  # nats-py's get path
    finally:
        await agent.close()
        await admin.close()


def test_an_agent_uses_the_artifact_store_with_its_own_rights_and_purges_nothing(tmp_path, caplog):
    data = tmp_path / "inst"
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=1, slots=1, auth=True))
        creds = read_credentials(data / "run")
        with caplog.at_level(logging.INFO, logger="niyantra.artifacts"):
            asyncio.run(agent_round_trip(m.url, creds, tmp_path))
        denied = [
            f"$JS.API.STREAM.PURGE.{S.ARTIFACT_STREAM}",
            f"$JS.API.STREAM.DELETE.{S.ARTIFACT_STREAM}",
            f"$JS.API.STREAM.UPDATE.{S.ARTIFACT_STREAM}",
            f"$JS.API.STREAM.MSG.DELETE.{S.ARTIFACT_STREAM}",
        ]
        asyncio.run(try_everything(m.url, "agent-node-1", creds["agent-node-1"], [("publish", s) for s in denied]))
        assert caplog.text.count("direct read incomplete") == 1  # only after direct gets were turned off
    finally:
        down(data)

"""`niyantra up --auth`: per-role users; the server refuses what a role may not do."""

from __future__ import annotations

import asyncio
import json
import socket
import stat

import nats
import nats.errors
import nats.js.errors
import pytest

from orchestrator.reports.queries import read_status
from orchestrator.runtime.auth import inbox_prefix, read_credentials
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, up
from orchestrator.writeside.api import Graph
from schemas import subjects as S
from tests.conftest import assert_eventually

pytestmark = pytest.mark.timeout(120)


def raw_connect(port: int, login: dict[str, str]) -> str:
    """The server's answer to CONNECT + PING on a plain socket (no client library state left over)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"INFO ")
        connect = json.dumps({"verbose": False, "pedantic": False, "protocol": 1, **login})
        sock.sendall(f"CONNECT {connect}\r\nPING\r\n".encode())
        return f.readline().decode()


async def denied_publish(url: str, user: str, password: str, subject: str) -> tuple[list[str], int]:
    """Publish ``subject`` as ``user``; return the errors the server reported and the subject's count in EVENTS."""
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    nc = await nats.connect(url, user=user, password=password, error_cb=on_error, inbox_prefix=inbox_prefix(user))
    try:
        await nc.publish(subject, b"{}")
        await nc.flush()
        await assert_eventually(lambda: errors, timeout=5, message="the server's permissions violation")
        info = await nc.jetstream().stream_info(S.STREAM, subjects_filter=subject)
    finally:
        await nc.close()
    return errors, sum((info.state.subjects or {}).values())


async def admin_purge(url: str, password: str) -> str:
    """Try to purge EVENTS as admin; return the server's refusal."""
    nc = await nats.connect(url, user="admin", password=password)
    try:
        with pytest.raises(nats.js.errors.APIError) as refused:
            await nc.jetstream().purge_stream(S.STREAM)
        return str(refused.value)
    finally:
        await nc.close()


async def tasks_succeeded(url: str, user: str, password: str) -> int:
    nc = await nats.connect(url, user=user, password=password)
    try:
        report = await read_status(nc, "authed")
    finally:
        await nc.close()
    return sum(1 for t in report.tasks if t["state"] == "succeeded")


def test_auth_refuses_strangers_and_cross_role_writes_and_a_run_completes(tmp_path, monkeypatch):
    data = tmp_path / "inst"
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=2, auth=True))
        creds_file = data / "run" / "credentials.json"
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "run" / "nats-auth.conf").stat().st_mode) == 0o600
        creds = read_credentials(data / "run")
        assert sorted(creds) == ["admin", "agent-node-1", "agent-node-2", "decider", "projector"]

        port = int(m.url.rsplit(":", 1)[1])
        assert "Authorization Violation" in raw_connect(port, {})
        assert "Authorization Violation" in raw_connect(port, {"user": "admin", "pass": "wrong"})
        assert raw_connect(port, {"user": "admin", "pass": creds["admin"]}).startswith("PONG")

        other_node = f"{S.ROOT}.node.node-2.NodeObserved"
        errors, stored = asyncio.run(denied_publish(m.url, "agent-node-1", creds["agent-node-1"], other_node))
        assert any("permissions violation" in e.lower() for e in errors), errors
        assert stored == 0
        approve = f"{S.ROOT}.task.g.t.TaskApproved"
        errors, stored = asyncio.run(denied_publish(m.url, "decider", creds["decider"], approve))
        assert any("permissions violation" in e.lower() for e in errors) and stored == 0, errors
        errors, stored = asyncio.run(
            denied_publish(m.url, "projector", creds["projector"], "$JS.API.STREAM.PURGE.EVENTS")
        )
        assert any("permissions violation" in e.lower() for e in errors), errors

        assert "purge" in asyncio.run(admin_purge(m.url, creds["admin"])).lower()  # even admin: append-only

        monkeypatch.setenv("NIYANTRA_USER", "admin")
        monkeypatch.setenv("NIYANTRA_PASSWORD", creds["admin"])
        g = Graph("authed")
        for i in range(6):
            g.task(f"t{i}", "true", depends_on=[f"t{i - 1}"] if i else [])
        g.submit(m.url)
        asyncio.run(
            assert_eventually(
                lambda: _all_done(m.url, creds["admin"]), timeout=60, message="the run completes with auth on"
            )
        )
    finally:
        down(data)


async def _all_done(url: str, password: str) -> bool:
    return await tasks_succeeded(url, "admin", password) == 6

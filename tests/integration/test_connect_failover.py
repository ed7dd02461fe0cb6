"""Connecting through a URL that names several servers: a cluster's URL still works with a member
down (the event store's synchronous client too), a URL whose every server refuses fails at once
with an error that names it, and a refused server is logged in one line, not a traceback."""

from __future__ import annotations

import logging

import pytest

from orchestrator.errors import EventLogUnavailable
from orchestrator.runtime.connection import connect
from orchestrator.runtime.ports import free_port
from orchestrator.writeside.bridge import SyncNats


def test_a_down_server_first_in_the_url_is_passed_over(nats_server):
    conn = SyncNats.connect(f"nats://127.0.0.1:{free_port()},{nats_server.url}", timeout=5)
    try:
        assert conn.nc.is_connected
        assert conn.nc.connected_url.port == int(nats_server.url.rsplit(":", 1)[1])
    finally:
        conn.close()


def test_a_url_whose_every_server_refuses_is_an_error_naming_it():
    url = f"nats://127.0.0.1:{free_port()},nats://127.0.0.1:{free_port()}"
    with pytest.raises(EventLogUnavailable, match="cannot connect to NATS at " + url.replace(".", r"\.")):
        SyncNats.connect(url, timeout=5)


async def test_a_refused_server_is_one_log_line_and_the_client_fails_over(nats_server, caplog):
    caplog.set_level(logging.WARNING, logger="niyantra.connection")
    dead = free_port()
    nc = await connect(f"nats://127.0.0.1:{dead},{nats_server.url}", dont_randomize=True)
    try:
        assert nc.is_connected
    finally:
        await nc.close()
    refused = [r for r in caplog.records if r.name == "niyantra.connection" and str(dead) in r.getMessage()]
    assert refused, [r.getMessage() for r in caplog.records]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in refused)

"""A synchronous client (the event store's) connects through any server its URL names: a
cluster's URL still works with a member down, and a URL whose every server refuses fails at once
with an error that names it."""

from __future__ import annotations

import pytest

from orchestrator.errors import EventLogUnavailable
from orchestrator.loopthread import SyncNats
from orchestrator.ports import free_port


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

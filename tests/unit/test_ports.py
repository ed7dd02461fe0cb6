"""Ports for servers we start: below the ephemeral range, so a restart gets its port back."""

from __future__ import annotations

import random
import socket
import threading

import pytest

from orchestrator.runtime.natsserver import server_args
from orchestrator.runtime.ports import ephemeral_range, free_port, is_free
from orchestrator.runtime.supervisor import _start_on_its_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32768\t60999\n", (32768, 60999)),
        ("1024 65000", (1024, 65000)),
        ("", (32768, 60999)),
        ("abc def", (32768, 60999)),
        ("60999 32768", (32768, 60999)),
        ("0 100", (32768, 60999)),
    ],
)
def test_ephemeral_range_is_read_or_defaults(text, expected):
    assert ephemeral_range(text) == expected


def test_a_free_port_lies_below_the_ephemeral_range_and_can_be_bound():
    low, high = ephemeral_range()
    for seed in range(20):
        port = free_port(rng=random.Random(seed))
        assert 10000 <= port < 65536 and not low <= port <= high
        assert is_free(port)


def test_the_preferred_port_is_kept_when_free_and_replaced_when_held():
    preferred = free_port()
    assert free_port(preferred) == preferred
    with socket.socket() as held:
        held.bind(("127.0.0.1", preferred))
        held.listen()
        other = free_port(preferred)
        assert other != preferred and is_free(other)
    assert free_port(70000) != 70000


def test_a_restart_waits_for_its_port_to_be_released(tmp_path):
    port = free_port()
    held = socket.socket()
    held.bind(("127.0.0.1", port))
    held.listen()
    releaser = threading.Timer(1.0, held.close)
    releaser.start()
    args = server_args(config=None, port=port, http_port=None, store_dir=tmp_path / "js")
    server = _start_on_its_port(args, tmp_path / "server.log", tmp_path / "js", timeout=30)
    try:
        assert server.port == port
    finally:
        server.stop()
        releaser.join()


def test_a_restart_whose_port_stays_held_names_the_problem(tmp_path):
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        args = server_args(config=None, port=port, http_port=None, store_dir=tmp_path / "js")
        with pytest.raises(Exception, match="address already in use"):
            _start_on_its_port(args, tmp_path / "server.log", tmp_path / "js", timeout=1)

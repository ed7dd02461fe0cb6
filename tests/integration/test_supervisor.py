"""`niyantra up` starts separate processes and `down` stops exactly those."""

from __future__ import annotations

import subprocess

import psutil
import pytest

from orchestrator.errors import ServerError
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, read_manifest, up


def test_up_then_down_stops_exactly_what_it_started(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    data = tmp_path / "inst"
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=1))
        names = [p.name for p in m.processes]
        assert names == [
            "nats-server",
            "projector-readiness",
            "projector-node-scores",
            "projector-confidence",
            "projector-archive",
            "decider",
            "watchdog",
            "agent-node-1",
            "agent-node-2",
        ]
        pids = [p.pid for p in m.processes]
        assert all(psutil.pid_exists(pid) for pid in pids)
        assert read_manifest(data) is not None
        with pytest.raises(ServerError, match="already running"):
            up(UpSettings(data_dir=data, port=free_port(), agents=1))
        stopped = down(data)
        assert sorted(stopped) == sorted(names)
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
        assert bystander.poll() is None
        assert read_manifest(data) is None
        assert down(data) == []
    finally:
        down(data)
        bystander.kill()
        bystander.wait()


def test_two_instances_side_by_side(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    try:
        ma = up(UpSettings(data_dir=a, port=free_port(), agents=1))
        mb = up(UpSettings(data_dir=b, port=free_port(), agents=1))
        assert ma.url != mb.url and ma.http_port != mb.http_port
        down(a)
        assert all(psutil.pid_exists(p.pid) for p in mb.processes)
    finally:
        down(a)
        down(b)

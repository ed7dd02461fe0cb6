"""Agent command-line options: every bad value is refused with a message naming it (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent"], "needs --node NAME"),
        (["agent", "--node", "a.b"], "node id"),
        (["agent", "--node", "n1", "--workspace", "tmp"], "--workspace must be one of task, shared, not 'tmp'"),
        (["agent", "--node", "n1", "--slots", "0"], "--slots must be at least 1"),
        (["agent", "--node", "n1", "--label", "gpu"], "--label takes K=V, not 'gpu'"),
        (["agent", "--node", "n1", "--observe-interval", "0"], "--observe-interval must be positive"),
        (["agent", "drain", "a b"], "node id"),
        (["logs", "g/t", "--phase", "build"], "--phase must be run or preflight, not 'build'"),
    ],
)
def test_bad_agent_options_are_refused_by_name(args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join((result.stderr or result.output).split())


def test_settings_from_flags_and_environment(monkeypatch):
    from orchestrator.cli.agent import _settings

    monkeypatch.setenv("NIYANTRA_SECRET_PATTERNS", "*CRED*,*PASS*")
    options = {
        "workdir": Path("/w"),
        "workspace": "shared",
        "observe_interval": 1.5,
        "grace": 2.0,
        "env_pass": ["PATH,HOME", "LANG"],
        "secret_pattern": None,
    }
    s = _settings("n1", "nats://x:1", 3, ["os=linux", "k=a=b"], options)
    assert (s.node_id, s.slots, s.labels, s.observe_interval_s) == ("n1", 3, {"os": "linux", "k": "a=b"}, 1.5)
    ex = s.execution
    assert (ex.workspace, ex.grace_s, ex.env_pass) == ("shared", 2.0, ("PATH", "HOME", "LANG"))
    assert ex.secret_patterns == ("*CRED*", "*PASS*")

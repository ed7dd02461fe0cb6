"""The connection settings every process shares: server lists, credentials, replicas."""

from __future__ import annotations

import pytest

from orchestrator.errors import ServerError
from orchestrator.runtime.auth import authorization_block, make_credentials, role_permissions
from orchestrator.runtime.connection import credentials, replicas, server_list


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("nats://a:4222", ["nats://a:4222"]),
        ("nats://a:1, nats://b:2,nats://c:3", ["nats://a:1", "nats://b:2", "nats://c:3"]),
        ("nats://a:1,", ["nats://a:1"]),
    ],
)
def test_server_list(url, servers):
    assert server_list(url) == servers


def test_an_empty_url_is_one_clear_error():
    with pytest.raises(ServerError, match="no NATS server"):
        server_list(" , ")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"NIYANTRA_USER": "admin", "NIYANTRA_PASSWORD": "s3cret"}, {"user": "admin", "password": "s3cret"}),
    ],
)
def test_credentials_come_from_the_environment_only(env, expected):
    assert credentials(env) == expected


def test_half_a_login_is_refused():
    with pytest.raises(ServerError, match="set both NIYANTRA_USER and NIYANTRA_PASSWORD"):
        credentials({"NIYANTRA_USER": "admin"})


@pytest.mark.parametrize(("raw", "n"), [(None, 1), ("3", 3), ("1", 1)])
def test_replicas(raw, n):
    assert replicas({} if raw is None else {"NIYANTRA_REPLICAS": raw}) == n


@pytest.mark.parametrize("raw", ["0", "7", "three", "-1"])
def test_bad_replicas_is_one_clear_error(raw):
    with pytest.raises(ServerError, match="NIYANTRA_REPLICAS must be 1 to 5"):
        replicas({"NIYANTRA_REPLICAS": raw})


def test_every_user_gets_a_distinct_random_password_and_agents_only_their_node():
    creds = make_credentials(["node-1", "node-2"])
    assert sorted(creds) == ["admin", "agent-node-1", "agent-node-2", "decider", "projector"]
    assert len(set(creds.values())) == 5 and all(len(p) >= 24 for p in creds.values())
    allow = role_permissions("agent-node-1")["publish"]["allow"]
    assert "ev.node.node-1.>" in allow and not any(a.startswith("ev.node.node-2") for a in allow)
    assert not any(
        "STREAM.DELETE" in a or "STREAM.PURGE" in a
        for r in ("decider", "projector")
        for a in role_permissions(r)["publish"]["allow"]
    )
    block = authorization_block(creds)
    assert block.startswith("authorization {") and creds["admin"] in block


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        role_permissions("guest")


def test_a_login_brings_its_own_reply_inbox_the_only_subjects_the_role_may_subscribe_to():
    from orchestrator.runtime.connection import login_options

    env = {"NIYANTRA_USER": "agent-node-1", "NIYANTRA_PASSWORD": "pw"}
    assert login_options(env)["inbox_prefix"] == "_INBOX.agent-node-1"
    assert login_options({}) == {}
    for role in ("decider", "projector", "agent-node-1"):
        assert role_permissions(role)["subscribe"] == {"allow": [f"_INBOX.{role}.>"]}


def test_an_agent_reports_task_results_for_its_own_node_only():
    allow = role_permissions("agent-node-1")["publish"]["allow"]
    for name in ("TaskStarted", "TaskCompleted", "TaskLost"):
        assert f"ev.task.*.*.{name}.node-1" in allow
        assert not any(a.startswith(f"ev.task.*.*.{name}") and not a.endswith(".node-1") for a in allow)
    assert "$JS.API.CONSUMER.MSG.NEXT.EVENTS.agent-node-1" in allow
    assert not any("agent-node-2" in a or a == "$JS.API.DIRECT.GET.EVENTS" for a in allow)


def test_adding_an_agent_gives_its_node_a_user_and_keeps_the_others(tmp_path):
    import stat

    from orchestrator.runtime.auth import add_agent, read_credentials, write_auth

    base = tmp_path / "nats.conf"
    base.write_text("listen: 127.0.0.1:4222\n")
    _, before = write_auth(tmp_path / "run", base, ["node-1"])
    password = add_agent(tmp_path / "run", base, "build-7")
    after = read_credentials(tmp_path / "run")
    assert after == {**before, "agent-build-7": password}
    config = (tmp_path / "run" / "nats-auth.conf").read_text()
    assert config.startswith("listen: 127.0.0.1:4222") and "ev.node.build-7.>" in config and password in config
    assert stat.S_IMODE((tmp_path / "run" / "nats-auth.conf").stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="not a valid id"):
        add_agent(tmp_path / "run", base, "bad.node")

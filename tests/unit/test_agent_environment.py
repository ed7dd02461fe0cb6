"""The task environment allowlist and the secret values (pure, table-driven)."""

from __future__ import annotations

import pytest

from node_agent.environment import EnvironmentCache, is_secret_name, secret_values, task_environment

AGENT_ENV = {
    "PATH": "/usr/bin",
    "HOME": "/home/a",
    "AWS_PROFILE": "dev",
    "AWS_REGION": "eu",
    "DEPLOY_TOKEN": "tok-123456",
    "NIYANTRA_NATS_URL": "nats://secret-host",
    "UNRELATED": "x",
}
OWN = {"NIYANTRA_TASK_ID": "T-1"}


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ((), {"PATH", "HOME", "NIYANTRA_TASK_ID"}),
        (("AWS_PROFILE",), {"PATH", "HOME", "AWS_PROFILE", "NIYANTRA_TASK_ID"}),
        (("AWS_*",), {"PATH", "HOME", "AWS_PROFILE", "AWS_REGION", "NIYANTRA_TASK_ID"}),
        (("DEPLOY_TOKEN", "MISSING"), {"PATH", "HOME", "DEPLOY_TOKEN", "NIYANTRA_TASK_ID"}),
        (("NIYANTRA_*",), {"PATH", "HOME", "NIYANTRA_TASK_ID"}),  # the agent's own config never leaks
        (("*",), {"PATH", "HOME", "AWS_PROFILE", "AWS_REGION", "DEPLOY_TOKEN", "UNRELATED", "NIYANTRA_TASK_ID"}),
    ],
)
def test_only_the_allowlist_passes(declared, expected):
    env = task_environment(AGENT_ENV, declared, OWN, default_pass=("PATH", "HOME"))
    assert set(env) == expected
    assert env["NIYANTRA_TASK_ID"] == "T-1"
    cache = EnvironmentCache(AGENT_ENV, ("PATH", "HOME"))
    for _ in range(2):  # computed, then taken from the cache: the same names, values and order
        assert list(cache.task_environment(declared, OWN).items()) == list(env.items())


def test_the_cache_keeps_no_run_variables():
    cache = EnvironmentCache(AGENT_ENV, ("PATH", "HOME"))
    first = cache.task_environment((), {"NIYANTRA_TASK_ID": "T-1", "NIYANTRA_ATTEMPT": "2"})
    first["PATH"] = "changed by a caller"
    second = cache.task_environment((), {"NIYANTRA_TASK_ID": "T-2"})
    assert second == {"PATH": "/usr/bin", "HOME": "/home/a", "NIYANTRA_TASK_ID": "T-2"}


def test_the_agent_variables_win_over_the_agent_environment():
    env = task_environment({"NIYANTRA_TASK_ID": "forged"}, ("*",), OWN)
    assert env["NIYANTRA_TASK_ID"] == "T-1"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DEPLOY_TOKEN", True),
        ("github_token", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("SSH_KEY_PATH", True),
        ("PATH", False),
        ("HOME", False),
        ("TOKENIZER", True),  # the patterns are deliberately broad; a false positive only hides a value
    ],
)
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_secret_values_are_longest_first_and_skip_short_ones():
    env = {"A_TOKEN": "abcd", "B_TOKEN": "abcdefgh", "C_KEY": "no", "PATH": "/usr/bin:/bin", "D_SECRET": "abcd"}
    assert secret_values(env) == ("abcdefgh", "abcd")


def test_custom_patterns_replace_the_default():
    env = {"DEPLOY_TOKEN": "tok-123456", "CREDS": "hunter22"}
    assert secret_values(env, ("CRED*",)) == ("hunter22",)

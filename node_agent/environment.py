"""The environment a task sees, and which values in it are secrets.

Only an allowlist passes from the agent's environment to a task: a small default set
(`DEFAULT_PASS`), the names (or ``fnmatch`` patterns) the task declares in its ``env``, and
the ``NIYANTRA_*`` variables the agent sets itself. Everything else the agent has, its NATS
credentials included, stays out.

A variable is a secret when its name matches one of the secret patterns (case-insensitive
``fnmatch``; default ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*KEY*``). The values of every
secret in the agent's environment (passed to the task or not) are redacted from output, logs
and events. Values shorter than `MIN_SECRET_LEN` are not redacted: replacing every ``1`` or
``on`` in a log would destroy it and hide nothing worth hiding.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

DEFAULT_PASS: tuple[str, ...] = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "LOGNAME")
DEFAULT_SECRET_PATTERNS: tuple[str, ...] = ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*KEY*")
MIN_SECRET_LEN = 4
AGENT_PREFIX = "NIYANTRA_"


def _matches(name: str, patterns: Iterable[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns)


def is_secret_name(name: str, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> bool:
    """Tell whether a variable called ``name`` holds a secret."""
    return _matches(name, patterns)


def passed_environment(
    agent_env: Mapping[str, str], declared: Iterable[str], *, default_pass: Iterable[str] = DEFAULT_PASS
) -> dict[str, str]:
    """The allowlisted part of ``agent_env`` (sorted by name): what `task_environment` passes on.

    ``declared`` are the task's ``env`` entries: exact names or ``fnmatch`` patterns (``AWS_*``).
    ``NIYANTRA_*`` names from the agent's environment never pass through.
    """
    allowed = (*default_pass, *declared)
    return {
        k: v
        for k, v in sorted(agent_env.items())
        if not k.startswith(AGENT_PREFIX) and any(fnmatch.fnmatchcase(k, p) for p in allowed)
    }


def task_environment(
    agent_env: Mapping[str, str],
    declared: Iterable[str],
    agent_vars: Mapping[str, str],
    *,
    default_pass: Iterable[str] = DEFAULT_PASS,
) -> dict[str, str]:
    """The task's environment: allowlisted names from ``agent_env`` (`passed_environment`) plus the
    agent's own variables (``agent_vars``: its ``NIYANTRA_*`` values for this run), set last so they win.
    """
    env = passed_environment(agent_env, declared, default_pass=default_pass)
    env.update(agent_vars)
    return env


class EnvironmentCache:
    """`passed_environment` of one agent's fixed environment, computed once per distinct ``declared``
    (a run copies it and adds its own variables instead of matching every variable again)."""

    LIMIT = 256  # distinct ``env`` declarations kept; past that the cache starts over

    def __init__(self, agent_env: Mapping[str, str], default_pass: Iterable[str] = DEFAULT_PASS) -> None:
        self.agent_env = dict(agent_env)
        self.default_pass = tuple(default_pass)
        self._passed: dict[tuple[str, ...], dict[str, str]] = {}

    def task_environment(self, declared: tuple[str, ...], agent_vars: Mapping[str, str]) -> dict[str, str]:
        """Equal to ``task_environment(agent_env, declared, agent_vars, default_pass=...)``."""
        passed = self._passed.get(declared)
        if passed is None:
            if len(self._passed) >= self.LIMIT:
                self._passed.clear()
            passed = self._passed[declared] = passed_environment(
                self.agent_env, declared, default_pass=self.default_pass
            )
        env = dict(passed)
        env.update(agent_vars)
        return env


def secret_values(
    env: Mapping[str, str], patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS, *, min_len: int = MIN_SECRET_LEN
) -> tuple[str, ...]:
    """Values of the secrets in ``env``, longest first (so a longer secret wins over its prefix)."""
    pats = tuple(patterns)
    values = {v for k, v in env.items() if len(v) >= min_len and _matches(k, pats)}
    return tuple(sorted(values, key=lambda v: (-len(v), v)))

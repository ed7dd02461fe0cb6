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


def task_environment(
    agent_env: Mapping[str, str],
    declared: Iterable[str],
    agent_vars: Mapping[str, str],
    *,
    default_pass: Iterable[str] = DEFAULT_PASS,
) -> dict[str, str]:
    """The task's environment: allowlisted names from ``agent_env`` plus the agent's own variables.

    ``declared`` are the task's ``env`` entries: exact names or ``fnmatch`` patterns (``AWS_*``).
    ``NIYANTRA_*`` names from the agent's environment never pass through; ``agent_vars`` (the
    agent's ``NIYANTRA_*`` values for this run) are set last and win.
    """
    allowed = (*default_pass, *declared)
    env = {
        k: v
        for k, v in sorted(agent_env.items())
        if not k.startswith(AGENT_PREFIX) and any(fnmatch.fnmatchcase(k, p) for p in allowed)
    }
    env.update(agent_vars)
    return env


def secret_values(
    env: Mapping[str, str], patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS, *, min_len: int = MIN_SECRET_LEN
) -> tuple[str, ...]:
    """Values of the secrets in ``env``, longest first (so a longer secret wins over its prefix)."""
    pats = tuple(patterns)
    values = {v for k, v in env.items() if len(v) >= min_len and _matches(k, pats)}
    return tuple(sorted(values, key=lambda v: (-len(v), v)))

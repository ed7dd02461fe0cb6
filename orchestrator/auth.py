"""Authorization for ``niyantra up --auth``: one NATS user per role, each allowed only its subjects.

Users: ``admin`` (everything: submit, approve, cancel, streams), ``decider`` (also the watchdog),
``projector`` (view buckets only), and one ``agent-<node>`` per node (its own node's events,
task starts and results, task output). Nobody but admin may approve, reject or cancel, create,
update, delete or purge a stream, or delete a message. ``up --auth`` writes random passwords to
``D/run/credentials.json`` and the server config (``nats.conf`` + the ``authorization`` block) to
``D/run/nats-auth.conf``, both mode 0600, and gives each process its own user through
``NIYANTRA_USER``/``NIYANTRA_PASSWORD``. There is no default password anywhere.

Limitation: task events' subjects (``ev.task.<graph>.<task>.TaskCompleted``) do not name the
node, so the server cannot tell one agent's result from another's; the write side does (a
start or result from a node that does not hold the task's attempt is refused). Subscriptions
are not restricted: every role may read the log.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from schemas import subjects as S

ADMIN, DECIDER, PROJECTOR = "admin", "decider", "projector"
CREDENTIALS = "credentials.json"
AUTH_CONFIG = "nats-auth.conf"

# What every non-admin client needs to use JetStream: info, consumers, direct gets, acks, replies.
_JS_CLIENT = [
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.>",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.MSG.GET.>",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.>",
    "$JS.ACK.>",
    "$JS.FC.>",
    "_INBOX.>",
]
# Only admin approves, rejects or cancels (a person's decision, recorded as such).
_HUMAN_ONLY = [
    f"{S.ROOT}.task.*.*.TaskApproved",
    f"{S.ROOT}.task.*.*.TaskRejected",
    f"{S.ROOT}.task.*.*.TaskCancelled",
    f"{S.ROOT}.graph.>",
]


def agent_user(node_id: str) -> str:
    """The NATS user of one node's agent."""
    return f"agent-{node_id}"


def role_permissions(user: str) -> dict[str, Any]:
    """The publish/subscribe permissions of ``user`` (admin has none: it may do anything)."""
    if user == DECIDER:
        roots = ("task", "node", "system", "prediction", "unschedulable")  # the watchdog's too
        allow = [f"{S.ROOT}.{root}.>" for root in roots]
    elif user == PROJECTOR:
        allow = [f"$KV.{bucket}.>" for bucket in S.VIEW_BUCKETS]
    elif user.startswith("agent-"):
        node = user.removeprefix("agent-")
        allow = [f"{S.ROOT}.node.{node}.>", f"{S.ROOT}.task.*.*.TaskStarted", f"{S.ROOT}.task.*.*.TaskCompleted"]
        allow += [f"{S.ROOT}.task.*.*.TaskLost", f"{S.LOG_ROOT}.>"]
    else:
        raise ValueError(f"unknown role {user!r}")
    return {"publish": {"allow": allow + _JS_CLIENT, "deny": _HUMAN_ONLY}, "subscribe": {"allow": [">"]}}


def make_credentials(nodes: list[str]) -> dict[str, str]:
    """A fresh random password for every user."""
    users = [ADMIN, DECIDER, PROJECTOR, *(agent_user(n) for n in nodes)]
    return {u: secrets.token_urlsafe(24) for u in users}


def authorization_block(creds: dict[str, str]) -> str:
    """The ``authorization`` block of nats.conf for these users (JSON is valid NATS config)."""
    users = []
    for user, password in creds.items():
        entry: dict[str, Any] = {"user": user, "password": password}
        if user != ADMIN:
            entry["permissions"] = role_permissions(user)
        users.append(entry)
    return "authorization " + json.dumps({"users": users}, indent=2) + "\n"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def write_auth(run_dir: Path, base_config: Path, nodes: list[str]) -> tuple[Path, dict[str, str]]:
    """Write fresh credentials and the server config with authorization; return (config, credentials)."""
    creds = make_credentials(nodes)
    _write_private(run_dir / CREDENTIALS, json.dumps(creds, indent=2) + "\n")
    config = run_dir / AUTH_CONFIG
    _write_private(config, base_config.read_text() + "\n" + authorization_block(creds))
    return config, creds


def read_credentials(run_dir: Path) -> dict[str, str]:
    """The credentials ``up --auth`` wrote."""
    return dict(json.loads((run_dir / CREDENTIALS).read_text()))

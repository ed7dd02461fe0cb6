"""Authorization for ``niyantra up --auth``: one NATS user per role, each allowed only its subjects.

Users: ``admin`` (everything: submit, approve, reject, cancel, drain, streams), ``decider`` (also
the watchdog), ``projector`` (view buckets only) and one ``agent-<node>`` per node. ``up --auth``
writes random passwords to ``D/run/credentials.json`` and the server config (``nats.conf`` + the
``authorization`` block) to ``D/run/nats-auth.conf``, both mode 0600, and gives each process its
own user through ``NIYANTRA_USER``/``NIYANTRA_PASSWORD``. There is no default password anywhere.

What the server enforces (publish and subscribe allow/deny lists per user):

- Only admin publishes graph submissions and cancels, approvals, rejections, task cancels and
  drain requests, and only admin may create, update, delete or purge a stream or delete a
  message (EVENTS also has ``deny_delete``/``deny_purge``: not even admin purges it).
- An agent publishes only its own node's events: ``ev.node.<node>.>`` and the task results
  that carry its node in the subject (``ev.task.*.*.TaskStarted.<node>``, ``TaskCompleted.<node>``,
  ``TaskLost.<node>``), plus task output on ``log.>`` and build artifacts in the artifact bucket
  (chunks and metadata, never a purge: see ``_ARTIFACT_RIGHTS``).
- An agent pulls only its own node's dispatch queue: it may create the durable consumer
  ``agent-<node>`` only with the filter ``ev.task.*.*.TaskDispatched.<node>`` (the filter is
  part of the API subject, so the server checks it) and fetch and ack only from that one.
- No role but admin subscribes to anything but its own reply inbox (``_INBOX.<user>.>``, set by
  `orchestrator.runtime.connection.connect`): nobody can listen to ``ev.>`` on the wire.

Known gap: nats-py creates ordered consumers (the agent's cancel and drain followers) with the
API subject ``$JS.API.CONSUMER.CREATE.EVENTS``, which does not name the filter, so the server
cannot tell an agent's cancel follower from a consumer on another node's dispatches delivered
to the agent's own inbox. An agent can therefore still *read* the log through an ordered
consumer it creates; it cannot pull, ack or alter another node's queue, and cannot write for
another node.
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
INBOX_ROOT = "_INBOX"
_API = "$JS.API"

# Only admin (a person) submits graphs, approves, rejects, cancels and drains.
_HUMAN_ONLY = [
    f"{S.ROOT}.task.*.*.TaskApproved",
    f"{S.ROOT}.task.*.*.TaskRejected",
    f"{S.ROOT}.task.*.*.TaskCancelled",
    f"{S.ROOT}.graph.*.GraphSubmitted",
    f"{S.ROOT}.graph.*.GraphTasksAdded",
    f"{S.ROOT}.graph.*.GraphCancelled",
    f"{S.ROOT}.node.*.NodeDrainRequested",
]
# Nobody but admin touches a stream's configuration or deletes anything.
_ADMIN_ONLY_API = [
    f"{_API}.STREAM.CREATE.>",
    f"{_API}.STREAM.UPDATE.>",
    f"{_API}.STREAM.DELETE.>",
    f"{_API}.STREAM.PURGE.>",
    f"{_API}.STREAM.MSG.DELETE.>",
    f"{_API}.STREAM.SNAPSHOT.>",
    f"{_API}.STREAM.RESTORE.>",
    f"{_API}.CONSUMER.DELETE.>",
    f"{_API}.CONSUMER.DURABLE.CREATE.>",  # legacy create: its subject does not name the filter
]
# What the decider and projectors need to read the log and the views through JetStream.
_JS_READER = [
    f"{_API}.INFO",
    f"{_API}.STREAM.INFO.>",
    f"{_API}.STREAM.NAMES",
    f"{_API}.STREAM.LIST",
    f"{_API}.STREAM.MSG.GET.>",
    f"{_API}.DIRECT.GET.>",
    f"{_API}.CONSUMER.CREATE.>",
    f"{_API}.CONSUMER.INFO.>",
    f"{_API}.CONSUMER.MSG.NEXT.>",
    "$JS.ACK.>",
    "$JS.FC.>",
]


# An agent stores and fetches artifacts: it writes chunks and metadata (an object, or the deletion
# marker that withdraws a corrupt one), reads metadata, reads chunks by direct get or through an
# ordered consumer (nats-py's fallback), never purges. Blobs are named by their content's SHA-256
# and every read verifies it, so a blob written by any agent cannot pass for other content.
_ARTIFACT_RIGHTS = [
    f"{S.ARTIFACT_CHUNKS}.>",
    f"{S.ARTIFACT_META}.>",
    f"{_API}.STREAM.INFO.{S.ARTIFACT_STREAM}",
    f"{_API}.STREAM.MSG.GET.{S.ARTIFACT_STREAM}",
    f"{_API}.DIRECT.GET.{S.ARTIFACT_STREAM}",
    f"{_API}.CONSUMER.CREATE.{S.ARTIFACT_STREAM}",
    f"$JS.FC.{S.ARTIFACT_STREAM}.>",
]


def agent_user(node_id: str) -> str:
    """The NATS user of one node's agent."""
    return f"agent-{node_id}"


def inbox_prefix(user: str) -> str:
    """The reply-inbox prefix of ``user``: the only subjects it may subscribe to."""
    return f"{INBOX_ROOT}.{user}"


def _agent_publish(node: str) -> list[str]:
    consumer, queue = S.agent_consumer(node), S.dispatch_filter(node)
    _, graph_cancels = S.cancel_filters()
    return [
        f"{S.ROOT}.node.{node}.>",
        *(S.result_filter(name, node) for name in S.RESULT_EVENTS),
        f"{S.LOG_ROOT}.>",
        f"{_API}.INFO",
        f"{_API}.STREAM.NAMES",  # nats-py looks the stream of a subscription up by subject
        f"{_API}.STREAM.INFO.{S.STREAM}",
        f"{_API}.STREAM.INFO.{S.LOG_STREAM}",
        f"{_API}.CONSUMER.CREATE.{S.STREAM}.{consumer}.{queue}",
        f"{_API}.CONSUMER.INFO.{S.STREAM}.{consumer}",
        f"{_API}.CONSUMER.MSG.NEXT.{S.STREAM}.{consumer}",
        f"$JS.ACK.{S.STREAM}.{consumer}.>",
        f"{_API}.CONSUMER.CREATE.{S.STREAM}",  # ordered cancel/drain followers (see the known gap)
        f"$JS.FC.{S.STREAM}.>",
        f"{_API}.DIRECT.GET.{S.STREAM}.{graph_cancels}",
        f"{_API}.DIRECT.GET.{S.STREAM}.{S.result_filter('TaskStarted', node)}",
        *(f"{_API}.DIRECT.GET.{S.STREAM}.{subject}" for subject in S.careful_subjects()),  # careful mode's state
        *_ARTIFACT_RIGHTS,
    ]


def role_permissions(user: str) -> dict[str, Any]:
    """The publish/subscribe permissions of ``user`` (admin has none: it may do anything)."""
    if user == DECIDER:
        # the watchdog's too; "cache": revoking an entry whose blobs do not verify (a hit is a task event)
        # "pause": a graph's dispatches paused or resumed on its failure rate
        roots = ("task", "node", "system", "prediction", "unschedulable", "backlog", "cache", "pause")
        allow = [f"{S.ROOT}.{root}.>" for root in roots] + _JS_READER
        allow += [f"{S.ROOT}.graph.*.TasksGenerated", f"{S.ROOT}.graph.*.GenerationLimitReached"]
    elif user == PROJECTOR:
        # and the archive projector's one record of where it archives (projections/archive/location.py)
        allow = [f"$KV.{bucket}.>" for bucket in S.VIEW_BUCKETS] + _JS_READER
        allow += [f"$KV.{S.KV_INSTANCE}.{S.INSTANCE_ARCHIVE_KEY}"]
    elif user.startswith("agent-"):
        allow = _agent_publish(S.check_id("node id", user.removeprefix("agent-")))
    else:
        raise ValueError(f"unknown role {user!r}")
    return {
        "publish": {"allow": allow, "deny": _HUMAN_ONLY + _ADMIN_ONLY_API},
        "subscribe": {"allow": [f"{inbox_prefix(user)}.>"]},
    }


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


def add_agent(run_dir: Path, base_config: Path, node_id: str) -> str:
    """Add (or re-key) the user of a new node's agent; rewrite both files; return its password.

    The running servers pick the new user up on ``nats-server --signal reload`` (or SIGHUP).
    """
    S.check_id("node id", node_id)
    creds = read_credentials(run_dir)
    creds[agent_user(node_id)] = secrets.token_urlsafe(24)
    _write_private(run_dir / CREDENTIALS, json.dumps(creds, indent=2) + "\n")
    _write_private(run_dir / AUTH_CONFIG, base_config.read_text() + "\n" + authorization_block(creds))
    return creds[agent_user(node_id)]

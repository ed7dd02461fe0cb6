"""How every niyantra process reaches NATS: the server list, credentials and the replica count.

A URL option may name several servers, comma-separated (``nats://h1:4222,nats://h2:4222``): the
client connects to any and fails over to the others. Credentials come from the environment
(``NIYANTRA_USER`` / ``NIYANTRA_PASSWORD``) or from a ``user:password@`` part of each URL; nothing
here has a default user. ``NIYANTRA_REPLICAS`` (set by ``niyantra up --cluster N``) is the replica
count of every stream and view bucket a process creates (default 1). This is shell code: it reads
the environment so that the pure core never does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import nats

from orchestrator.errors import ServerError
from orchestrator.runtime.auth import inbox_prefix

log = logging.getLogger("niyantra.connection")

ENV_USER = "NIYANTRA_USER"
ENV_PASSWORD = "NIYANTRA_PASSWORD"
ENV_REPLICAS = "NIYANTRA_REPLICAS"


def server_list(url: str) -> list[str]:
    """The servers named by a (possibly comma-separated) URL option."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise ServerError(f"no NATS server in {url!r}")
    return servers


def credentials(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``user``/``password`` connect options from the environment, or none when auth is off."""
    env = os.environ if env is None else env
    user, password = env.get(ENV_USER, ""), env.get(ENV_PASSWORD, "")
    if bool(user) != bool(password):
        raise ServerError(f"set both {ENV_USER} and {ENV_PASSWORD}, or neither")
    return {"user": user, "password": password} if user else {}


def replicas(env: Mapping[str, str] | None = None) -> int:
    """The replica count for streams and buckets this process creates (``NIYANTRA_REPLICAS``, default 1)."""
    raw = (os.environ if env is None else env).get(ENV_REPLICAS, "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 5:
        raise ServerError(f"{ENV_REPLICAS} must be 1 to 5, got {raw!r}")
    return int(raw)


def login_options(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Credentials plus the user's own reply-inbox prefix (the only subjects a role may subscribe to)."""
    login = credentials(env)
    return {**login, "inbox_prefix": inbox_prefix(login["user"])} if login else {}


async def connect(url: str, **options: Any) -> Any:
    """``nats.connect`` to every server in ``url``, with the environment's credentials. Client
    errors (each refused reconnect attempt while a server is down) and the reconnection are logged
    in one line each; nats-py's default prints a traceback for every attempt."""
    login = login_options()
    if "user" in options:  # an explicit login (up creating streams as admin) brings its own inbox
        login = {"inbox_prefix": inbox_prefix(options["user"])}
    client: list[Any] = []

    async def reconnected() -> None:
        where = client[0].connected_url if client else None
        log.warning("nats: reconnected to %s", where.netloc if where else "a server")

    defaults = {"error_cb": _on_error, "reconnected_cb": reconnected}
    nc = await nats.connect(servers=server_list(url), **{**defaults, **login, **options})
    client.append(nc)
    return nc


async def _on_error(e: Exception) -> None:
    log.warning("nats: %r", e)

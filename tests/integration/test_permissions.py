"""`up --auth`: the server itself refuses every cross-role publish and every cross-node read."""

from __future__ import annotations

import asyncio
import json

import nats
import nats.errors
import nats.js.errors
import pytest

from orchestrator.runtime.auth import inbox_prefix, read_credentials
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, up
from schemas import subjects as S
from tests.conftest import assert_eventually

pytestmark = pytest.mark.timeout(120)

DISPATCH_2 = S.dispatch_filter("node-2")
# user → subjects it must not publish (each would be a forged fact or an admin-only act)
DENIED_PUBLISH = {
    "agent-node-1": [
        "ev.node.node-2.NodeObserved",
        "ev.node.node-1.NodeDrainRequested",
        "ev.task.g.t.TaskStarted.node-2",
        "ev.task.g.t.TaskCompleted.node-2",
        "ev.task.g.t.TaskLost.node-2",
        "ev.task.g.t.TaskDispatched.node-1",
        "ev.task.g.t.TaskApproved",
        "ev.task.g.t.TaskCancelled",
        "ev.graph.g.GraphSubmitted",
        "ev.graph.g.GraphCancelled",
        f"$KV.{S.KV_READINESS}.task.g.t",
        f"$JS.API.STREAM.PURGE.{S.STREAM}",
        f"$JS.API.CONSUMER.DELETE.{S.STREAM}.agent-node-2",
    ],
    "decider": [
        "ev.task.g.t.TaskApproved",
        "ev.task.g.t.TaskRejected",
        "ev.task.g.t.TaskCancelled",
        "ev.graph.g.GraphSubmitted",
        "ev.graph.g.GraphCancelled",
        "ev.node.node-1.NodeDrainRequested",
        f"$KV.{S.KV_READINESS}.task.g.t",
        f"$JS.API.STREAM.PURGE.{S.STREAM}",
        f"$JS.API.STREAM.DELETE.{S.STREAM}",
        f"$JS.API.STREAM.UPDATE.{S.STREAM}",
        f"$JS.API.STREAM.MSG.DELETE.{S.STREAM}",
        f"$JS.API.CONSUMER.DELETE.{S.STREAM}.agent-node-1",
    ],
    "projector": [
        "ev.task.g.t.TaskDispatched.node-1",
        "ev.task.g.t.TaskCompleted.node-1",
        "ev.node.node-1.NodeObserved",
        "ev.graph.g.GraphSubmitted",
        f"$JS.API.STREAM.DELETE.{S.STREAM}",
        f"$JS.API.STREAM.CREATE.{S.STREAM}",
    ],
}
# What agent-node-1 must not do to read node-2's dispatches: listen on the wire, pull or
# (re)create node-2's queue, create its own consumer on node-2's filter, or get messages directly.
CROSS_NODE_READS = [
    ("subscribe", DISPATCH_2),
    ("subscribe", "ev.>"),
    ("subscribe", "_INBOX.agent-node-2.>"),
    ("publish", f"$JS.API.CONSUMER.MSG.NEXT.{S.STREAM}.agent-node-2"),
    ("publish", f"$JS.API.CONSUMER.CREATE.{S.STREAM}.agent-node-2.{DISPATCH_2}"),
    ("publish", f"$JS.API.CONSUMER.CREATE.{S.STREAM}.spy.{DISPATCH_2}"),
    ("publish", f"$JS.API.CONSUMER.DURABLE.CREATE.{S.STREAM}.agent-node-1"),
    ("publish", f"$JS.API.DIRECT.GET.{S.STREAM}.ev.task.g.t.TaskDispatched.node-2"),
    ("publish", f"$JS.API.DIRECT.GET.{S.STREAM}"),
    ("publish", f"$JS.API.STREAM.MSG.GET.{S.STREAM}"),
]


async def login(url: str, user: str, password: str, errors: list[str]) -> nats.NATS:
    async def on_error(e: Exception) -> None:
        errors.append(str(e).lower())

    return await nats.connect(
        url, user=user, password=password, inbox_prefix=inbox_prefix(user), error_cb=on_error, allow_reconnect=False
    )


def refused(errors: list[str], kind: str, subject: str) -> bool:
    """The server said no to this publish or subscription (nats-py reports it lowercased)."""
    what = "publish" if kind == "publish" else "subscription"
    return any(f'permissions violation for {what} to "{subject.lower()}"' in e for e in errors)


async def try_everything(url: str, user: str, password: str, acts: list[tuple[str, str]]) -> list[str]:
    """Do each act as ``user``; return the server's error texts once every act was refused (or time ran out)."""
    errors: list[str] = []
    nc = await login(url, user, password, errors)
    try:
        for kind, subject in acts:
            if kind == "publish":
                await nc.publish(subject, json.dumps({"stream_name": S.STREAM}).encode(), reply=nc.new_inbox())
            else:
                await nc.subscribe(subject)
        await nc.flush()
        await assert_eventually(
            lambda: all(refused(errors, kind, s) for kind, s in acts),
            timeout=10,
            message=f"{user}: not refused: {[a for a in acts if not refused(errors, *a)]}",
        )
    finally:
        await nc.close()
    return errors


async def stored_on(url: str, password: str, subjects: list[str]) -> dict[str, int]:
    """Messages in EVENTS per subject (admin reads), and the stream's total."""
    nc = await nats.connect(url, user="admin", password=password, inbox_prefix=inbox_prefix("admin"))
    try:
        js = nc.jetstream()
        out = {}
        for subject in subjects:
            info = await js.stream_info(S.STREAM, subjects_filter=subject)
            out[subject] = sum((info.state.subjects or {}).values())
        return out
    finally:
        await nc.close()


async def own_queue_works(url: str, password: str) -> int:
    """agent-node-1 may still read its own queue (the denials above are not a broken login)."""
    nc = await nats.connect(url, user="agent-node-1", password=password, inbox_prefix=inbox_prefix("agent-node-1"))
    try:
        info = await nc.jetstream().consumer_info(S.STREAM, S.agent_consumer("node-1"))
        return int(info.num_pending or 0) + 1
    finally:
        await nc.close()


async def admin_cannot_erase(url: str, password: str) -> list[str]:
    """Even admin: EVENTS denies purge and message delete (the stream's own config)."""
    nc = await nats.connect(url, user="admin", password=password, inbox_prefix=inbox_prefix("admin"))
    out = []
    try:
        js = nc.jetstream()
        for act in (lambda: js.purge_stream(S.STREAM), lambda: js.delete_msg(S.STREAM, 1)):
            with pytest.raises(nats.js.errors.APIError) as e:
                await act()
            out.append(str(e.value).lower())
        info = await js.stream_info(S.STREAM)
        assert info.config.deny_delete and info.config.deny_purge
    finally:
        await nc.close()
    return out


def test_each_cross_role_publish_and_each_cross_node_read_is_refused_by_the_server(tmp_path):
    data = tmp_path / "inst"
    try:
        m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=1, auth=True))
        creds = read_credentials(data / "run")
        for user, subjects in DENIED_PUBLISH.items():
            errors = asyncio.run(try_everything(m.url, user, creds[user], [("publish", s) for s in subjects]))
            assert all(refused(errors, "publish", s) for s in subjects), errors
        forged = [s for subjects in DENIED_PUBLISH.values() for s in subjects if s.startswith("ev.")]
        assert set(asyncio.run(stored_on(m.url, creds["admin"], forged)).values()) == {0}

        errors = asyncio.run(try_everything(m.url, "agent-node-1", creds["agent-node-1"], CROSS_NODE_READS))
        assert all(refused(errors, kind, s) for kind, s in CROSS_NODE_READS), errors
        assert asyncio.run(own_queue_works(m.url, creds["agent-node-1"])) >= 1

        purge, delete = asyncio.run(admin_cannot_erase(m.url, creds["admin"]))
        assert "purge" in purge and "delete" in delete
    finally:
        down(data)

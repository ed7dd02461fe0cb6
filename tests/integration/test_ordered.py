"""Ordered consumers and view-bucket watches on a real server: they ask for heartbeats each
HEARTBEAT_S, resume where they stood when their consumer is recreated (even before their first
message), and come back by themselves when their consumer vanishes (as when its server dies)."""

from __future__ import annotations

from orchestrator.runtime.ordered import HEARTBEAT_S, subscribe_ordered, watch_bucket
from tests.conftest import assert_eventually

STREAM = "T"


async def _stream(nc, *messages: bytes) -> None:
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["t.>"])
    for m in messages:
        await js.publish("t.x", m)


async def _collect(nc, **kw) -> tuple[object, list[bytes]]:
    got: list[bytes] = []

    async def on_msg(msg) -> None:
        got.append(msg.data)

    return await subscribe_ordered(nc, "t.>", stream=STREAM, cb=on_msg, **kw), got


async def test_a_follower_from_now_on_gets_only_new_messages(nc):
    await _stream(nc, b"old-1", b"old-2")
    sub, got = await _collect(nc)
    await nc.jetstream().publish("t.x", b"new-1")
    await assert_eventually(lambda: got == [b"new-1"], timeout=10, message=f"got {got}")


async def test_a_start_sequence_is_where_delivery_begins(nc):
    await _stream(nc, b"m1", b"m2", b"m3")
    sub, got = await _collect(nc, start_seq=2)
    await assert_eventually(lambda: got == [b"m2", b"m3"], timeout=10, message=f"got {got}")


async def test_the_consumer_asks_for_heartbeats_each_heartbeat_s(nc):
    await _stream(nc)
    sub, _ = await _collect(nc)
    info = await sub.consumer_info()
    assert info.config.idle_heartbeat == HEARTBEAT_S
    assert info.config.idle_heartbeat < 5  # nats-py's default, which left a cluster idle 10-20 s


async def test_a_reset_before_the_first_message_does_not_replay_the_stream(nc):
    """nats-py resumes a reset consumer after the last sequence it delivered: 0 before any message."""
    await _stream(nc, b"old-1", b"old-2", b"old-3")
    sub, got = await _collect(nc)
    first = sub._consumer
    await sub._sub._jsi.reset_ordered_consumer(sub._sub._jsi._sseq + 1)
    await assert_eventually(lambda: sub._consumer != first, timeout=10, message="consumer recreated")
    await nc.jetstream().publish("t.x", b"new-1")
    await assert_eventually(lambda: b"new-1" in got, timeout=10, message=f"got {got}")
    assert got == [b"new-1"]


async def test_a_consumer_that_vanishes_is_recreated_and_nothing_is_missed(nc):
    """Deleting the consumer is what the client sees when the server holding it dies."""
    await _stream(nc)
    sub, got = await _collect(nc)
    js = nc.jetstream()
    await js.publish("t.x", b"before")
    await assert_eventually(lambda: got == [b"before"], timeout=10, message=f"got {got}")
    gone = sub._consumer
    await js.delete_consumer(STREAM, gone)
    await js.publish("t.x", b"while-gone")
    await assert_eventually(lambda: sub._consumer != gone, timeout=30, message="a new consumer")
    await js.publish("t.x", b"after")
    await assert_eventually(lambda: got[-1:] == [b"after"], timeout=10, message=f"got {got}")
    assert got == [b"before", b"while-gone", b"after"]


async def test_a_bucket_watch_gives_every_last_value_then_the_marker_then_changes(nc):
    kv = await nc.jetstream().create_key_value(bucket="B", history=1)
    await kv.put("a", b"1")
    await kv.put("b", b"1")
    await kv.put("a", b"2")
    watch = await watch_bucket(nc, "B")
    try:
        first = [await watch.next(timeout=10) for _ in range(3)]
        assert [(e.key, e.value) for e in first[:2]] == [("b", b"1"), ("a", b"2")]
        assert first[1].delta == 0
        assert first[2] is None
        await kv.delete("b")
        change = await watch.next(timeout=10)
        assert (change.key, change.value) == ("b", b"")
    finally:
        await watch.stop()


async def test_an_empty_bucket_watch_gives_the_marker_at_once(nc):
    await nc.jetstream().create_key_value(bucket="E", history=1)
    watch = await watch_bucket(nc, "E")
    try:
        assert await watch.next(timeout=10) is None
    finally:
        await watch.stop()


async def test_a_bucket_watch_whose_consumer_vanishes_follows_again(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="V", history=1)
    await kv.put("k", b"1")
    watch = await watch_bucket(nc, "V")
    try:
        assert (await watch.next(timeout=10)).value == b"1"
        assert await watch.next(timeout=10) is None
        gone = watch._sub._consumer
        await js.delete_consumer("KV_V", gone)
        await assert_eventually(lambda: watch._sub._consumer != gone, timeout=30, message="a new consumer")
        await kv.put("k", b"2")
        entry = await watch.next(timeout=10)
        assert (entry.key, entry.value) == ("k", b"2")  # not the value already seen, again
    finally:
        await watch.stop()


async def test_a_watch_of_some_keys_gives_only_theirs(nc):
    """One graph's keys of a view bucket (`projections.viewmirror.graph_keys`): a reader of one run
    does not load every run the bucket holds; a filter that matches nothing yet still gives the marker."""
    kv = await nc.jetstream().create_key_value(bucket="R", history=1)
    for key in ("graph.a", "task.a.x", "task.a.y", "graph.b", "task.b.x", "_checkpoint"):
        await kv.put(key, key.encode())
    watch = await watch_bucket(nc, "R", ("graph.a", "task.a.>", "_checkpoint"))
    nothing = await watch_bucket(nc, "R", ("graph.c", "task.c.>"))
    try:
        first = [await watch.next(timeout=10) for _ in range(5)]
        assert sorted(e.key for e in first[:4]) == ["_checkpoint", "graph.a", "task.a.x", "task.a.y"]
        assert first[4] is None
        await kv.put("task.b.y", b"other run")
        await kv.put("task.a.z", b"this run")
        assert (await watch.next(timeout=10)).key == "task.a.z"
        assert await nothing.next(timeout=10) is None
    finally:
        await watch.stop()
        await nothing.stop()

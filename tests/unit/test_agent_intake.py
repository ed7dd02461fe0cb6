"""`node_agent.intake.Intake`'s bookkeeping without a server: which delivery runs, which waits for a
slot, and how much the open pull requests still owe (deliveries, 408/409 statuses, lost requests).
The messages are real nats-py `Msg` objects with JetStream ack subjects."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from node_agent.intake import MARGIN_S, REQUEST_S, Intake, _Request, next_subject


def delivery(seq: int, delivered: int = 1) -> Msg:
    reply = f"$JS.ACK.EVENTS.agent-n1.{delivered}.{seq}.{seq}.1700000000000000000.0"
    return Msg(_client=None, subject=f"ev.task.g.t{seq}.TaskDispatched.n1", reply=reply, data=b"{}")


def status(code: str, pending: int | None = None) -> Msg:
    headers = {"Status": code, "Description": "Request Timeout"}
    if pending is not None:
        headers["Nats-Pending-Messages"] = str(pending)
    return Msg(_client=None, subject="_INBOX.x", data=b"", headers=headers)


def intake(slots: int, owed: tuple[int, ...] = ()) -> tuple[Intake, list[int]]:
    started: list[int] = []
    i = Intake(None, next_subject("EVENTS", "agent-n1"), slots, started.append)
    i._requests.extend(_Request(100.0 + n, o) for n, o in enumerate(owed))
    return i, started


def owed(i: Intake) -> list[int]:
    return [r.owed for r in i._requests]


def test_the_pull_subject_names_the_stream_and_consumer():
    assert next_subject("EVENTS", "agent-n1") == "$JS.API.CONSUMER.MSG.NEXT.EVENTS.agent-n1"


async def test_deliveries_beyond_the_slots_wait_for_one_and_a_second_delivery_runs_nothing():
    i, started = intake(2)
    for seq in (5, 6, 7):
        i.take(delivery(seq))
    assert (started, list(i.backlog), i.free) == ([5, 6], [7], -1)
    again = delivery(6, delivered=2)
    i.take(again)  # delivered again while its handler runs: that handler acks this one
    assert started == [5, 6] and i.delivery[6] is again
    assert i.release(5) and started == [5, 6, 7] and list(i.backlog) == []
    assert 5 not in i.delivery and not i.release(5)  # a handler is released once
    i.finished(6)
    assert i.wake.is_set() and i.free == 1


@pytest.mark.parametrize(
    ("before", "message", "after"),
    [
        ((2, 1), delivery(1), [1, 1]),  # a delivery takes one off the oldest request still owing
        ((1, 1), delivery(1), [1]),  # a request owed nothing more is gone
        ((2, 1), status("408", pending=2), [1]),  # the oldest expired owing what we thought
        ((2, 2), status("408", pending=1), [3]),  # it was served one we counted against another
        ((1, 3), status("408", pending=2), [2]),  # another was served one we counted against it
        ((2, 1), status("409"), [1]),  # ended by the server, nothing said: as we counted
        ((2,), status("100"), [2]),  # a heartbeat ends nothing
        ((), status("408", pending=1), []),
    ],
)
async def test_what_the_open_requests_still_owe(before, message, after):
    i, _ = intake(8, before)
    await i._receive(message)
    assert owed(i) == after


def test_a_request_past_its_expiry_and_margin_is_taken_as_ended():
    i, _ = intake(8)
    i._requests.extend([_Request(10.0, 3), _Request(12.0, 2)])
    assert i.owed(10.0 + MARGIN_S) == 5
    assert i.owed(10.0 + MARGIN_S + 0.1) == 2
    assert i.next_expiry(11.5) == pytest.approx(12.0 + MARGIN_S - 11.5)
    assert i.owed(20.0) == 0 and i.next_expiry(20.0) == REQUEST_S


def test_a_reconnect_takes_every_open_request_as_lost():
    i, _ = intake(8, (2, 3))
    assert not i.forget_if_reconnected(0) and owed(i) == [2, 3]
    assert i.forget_if_reconnected(1) and owed(i) == []
    i._requests.append(_Request(200.0, 4))
    assert not i.forget_if_reconnected(1) and owed(i) == [4]

"""A delivered message's stream sequence, stored time and pending count read off its reply
subject, as nats-py reads them, and a view bucket's entry."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from orchestrator.runtime.ordered import BucketEntry, delivery, stored_at

NS = 1_796_000_000_123_456_789

REPLIES = [
    f"$JS.ACK.KV_view_readiness.ordered1.1.42.7.{NS}.0",  # without domain and account hash
    f"$JS.ACK.KV_view_readiness.ordered1.1.42.7.{NS}.1234",
    f"$JS.ACK._.ACCHASH.KV_view_readiness.ordered1.1.42.7.{NS}.5.r4nd",  # with them (and a random token)
    f"$JS.ACK.hub.ACCHASH.KV_view_readiness.ordered1.1.42.7.{NS}.0",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_delivery_equals_nats_py_metadata(reply):
    md = Msg.Metadata._from_reply(reply)
    seq, at, pending = delivery(reply)
    assert (seq, pending) == (md.sequence.stream, md.num_pending)
    assert stored_at(at) == md.timestamp
    assert BucketEntry("k", b"", at, pending).created == md.timestamp


def test_an_entry_without_a_stored_time_has_none():
    assert BucketEntry("k", b"", 0, 0).created is None

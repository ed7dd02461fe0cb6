"""The fast reader's protocol scan (no server): whole messages of its subscription are taken in
order, a data message's headers are dropped, a status (flow control, heartbeat) keeps them, and
anything else (another subscription, a cut-off message) is left for nats-py's parser."""

from __future__ import annotations

from projections.logread import _FastParser, _Sink

DATA_HDR = b"NATS/1.0\r\nNats-Msg-Id: d1\r\n\r\n"
FLOW = b"NATS/1.0 100 FlowControl Request\r\n\r\n"


def hmsg(subject: bytes, sid: bytes, reply: bytes, hdr: bytes, body: bytes) -> bytes:
    head = b"HMSG %s %s %s%d %d\r\n" % (subject, sid, reply + b" " if reply else b"", len(hdr), len(hdr) + len(body))
    return head + hdr + body + b"\r\n"


def scanned(buf: bytes) -> tuple[list[tuple[bytes, bytes, bytes, bytes]], bytes]:
    parser = _FastParser.__new__(_FastParser)  # only the buffer and the fast table: no connection
    parser.buf, parser.fast = bytearray(buf), {b"7": _Sink()}
    parser._scan()
    return parser.fast[b"7"].items, bytes(parser.buf)


def test_data_headers_are_dropped_and_a_status_keeps_its_own() -> None:
    ack = b"$JS.ACK.EVENTS.c.1.5.5.0.0"
    buf = hmsg(b"ev.a", b"7", ack, DATA_HDR, b"{}") + hmsg(b"in", b"7", b"$JS.FC.x", FLOW, b"")
    buf += b"MSG ev.b 7 %s 2\r\n[]\r\n" % ack
    items, rest = scanned(buf)
    assert items == [(b"ev.a", ack, b"", b"{}"), (b"in", b"$JS.FC.x", FLOW, b""), (b"ev.b", ack, b"", b"[]")]
    assert rest == b""


def test_another_subscription_or_a_partial_message_stays_in_the_buffer() -> None:
    first = hmsg(b"ev.a", b"7", b"r", DATA_HDR, b"{}")
    other = hmsg(b"ev.z", b"9", b"r", DATA_HDR, b"{}")
    items, rest = scanned(first + other + first)
    assert [i[0] for i in items] == [b"ev.a"] and rest == other + first
    cut = first[:-5]
    items, rest = scanned(first + cut)
    assert len(items) == 1 and rest == cut

"""Reading a stretch of the event stream fast: the whole-log reads (rebuild, verify, replay).

A whole-log read is bound by the client, not the server: nats-py spends 10-20 µs on each
message (a regex per protocol line, a ``Msg`` object, header parsing, a queue and a task per
callback, the ordered consumer's bookkeeping, then ``msg.metadata``), several times what folding
it costs. `read_chunks` asks the server for what nats-py's ordered consumer asks for (an
ephemeral push consumer on our own inbox: ack none, flow control, idle heartbeats, memory
storage, one replica) and takes that one subscription's messages straight out of the
connection's protocol buffer: the parser of the connection is switched, for the duration of the
read, to `_FastParser`, which recognises ``MSG``/``HMSG`` lines of the reader's subscription
(one ``find`` and one ``split``) and hands ``(subject, reply, headers, data)`` over in bulk; every
other protocol line goes through nats-py's own parser, one operation at a time, so the rest of
the connection (requests, other subscriptions, PING/PONG) works as before.

The reader yields chunks of ``(stream seq, subject, data)`` in stream order. Like the ordered
consumer it answers flow-control requests and stalled heartbeats, and it checks the consumer's
delivery sequence: a hole (a message the server dropped for this consumer) restarts the consumer
at the next stream sequence, so nothing is skipped. No message for ``idle_s`` seconds is an
error (`ProjectionError`), never a silent end. When the connection's parser is not the one this
module knows (another nats-py), it falls back to nats-py's ordered consumer: slower, same result.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.protocol.parser import AWAITING_MSG_PAYLOAD, Parser

from orchestrator.runtime.ordered import subscribe_ordered
from projections.errors import ProjectionError
from schemas import subjects as S

Chunk = list[tuple[int, str, bytes]]

_CRLF = b"\r\n"
_STATUS = b"NATS/1.0 "  # a header block that starts with a status: heartbeat or flow control
_STALLED = b"Nats-Consumer-Stalled:"
_HEARTBEAT_S = 2.0
_INACTIVE_S = 5.0


class _FastParser(Parser):
    """nats-py's parser with a fast path for the subscriptions registered in ``fast``."""

    fast: dict[bytes, _Sink]

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        buf.extend(data)
        while buf:
            if self.state == AWAITING_MSG_PAYLOAD:  # a payload nats-py's parser started: let it finish just that
                if not await self._one(self.needed + 2):
                    return
                continue
            self._scan()
            if not buf:
                return
            # not one of ours, or ours not whole yet: one operation through nats-py's parser, once whole
            e = buf.find(_CRLF)
            if e < 0:
                return
            size = e + 2
            if buf.startswith((b"MSG ", b"HMSG ")):
                size += int(bytes(buf[:e]).split()[-1]) + 2
            if not await self._one(size):
                return

    def _scan(self) -> None:
        """Take the whole messages of fast subscriptions off the front of the buffer."""
        buf, fast = self.buf, self.fast
        data = bytes(buf)  # one copy of the buffer: each slice below is then one copy, not two
        pos, n, woke = 0, len(data), set()
        while pos < n:
            e = data.find(_CRLF, pos)
            if e < 0:
                break
            if data.startswith(b"HMSG ", pos):  # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                parts = data[pos + 5 : e].split()
                hl = int(parts[-2]) if 4 <= len(parts) <= 5 else 0
                reply = parts[2] if len(parts) == 5 else b""
            elif data.startswith(b"MSG ", pos):  # MSG <subject> <sid> [reply] <bytes>
                parts = data[pos + 4 : e].split()
                hl = 0
                reply = parts[2] if len(parts) == 4 else b""
            else:
                break
            sink = fast.get(parts[1]) if len(parts) >= 3 else None
            end = e + 2 + int(parts[-1])
            if sink is None or end + 2 > n:
                break
            # the headers matter only when they carry a status (flow control, heartbeat)
            hdr = data[e + 2 : e + 2 + hl] if hl and data.startswith(_STATUS, e + 2) else b""
            sink.items.append((parts[0], reply, hdr, data[e + 2 + hl : end]))
            woke.add(sink)
            pos = end + 2
        if pos:
            del buf[:pos]
        for sink in woke:
            sink.wake.set()

    async def _one(self, size: int) -> bool:
        """Let nats-py's parser handle exactly the first ``size`` bytes (False: not there yet)."""
        buf = self.buf
        if len(buf) < size:
            return False
        rest = bytes(buf[size:])
        del buf[size:]
        try:
            await Parser.parse(self)
        finally:
            buf.extend(rest)
        return True


class _Sink:
    """Messages of one fast subscription, as the parser found them."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes, bytes, bytes]] = []
        self.wake = asyncio.Event()


def _fast_capable(nc: Any) -> bool:
    ps = getattr(nc, "_ps", None)
    return type(ps) in (Parser, _FastParser) and all(
        hasattr(ps, a) for a in ("buf", "state", "needed", "header_needed", "msg_arg")
    )


def _attach(nc: Any, sid: bytes, sink: _Sink) -> None:
    ps: Any = nc._ps
    if type(ps) is Parser:
        cast(Any, ps).fast = {}
        cast(Any, ps).__class__ = _FastParser  # same object, same buffer and state: only the method changes
    ps.fast[sid] = sink


def _detach(nc: Any, sid: bytes) -> None:
    ps: Any = nc._ps
    if type(ps) is _FastParser:
        ps.fast.pop(sid, None)
        if not ps.fast:
            cast(Any, ps).__class__ = Parser


async def read_chunks(
    nc: Any, first: int, last: int, *, stream: str = S.STREAM, idle_s: float = 10.0
) -> AsyncIterator[Chunk]:
    """The stored messages with sequences ``first`` to ``last`` (inclusive), in chunks, in order."""
    if last < first:
        return
    if not _fast_capable(nc):
        async for chunk in _read_ordered(nc, first, last, stream=stream, idle_s=idle_s):
            yield chunk
        return
    reader = _Reader(nc, stream, first, last)
    while reader.next_seq <= last:  # one consumer, or another after a hole in its deliveries
        await reader.start()
        try:
            while reader.next_seq <= last and not reader.hole:
                try:
                    await asyncio.wait_for(reader.sink.wake.wait(), idle_s)
                except TimeoutError:
                    raise ProjectionError(
                        f"reading {stream}: nothing arrived for {idle_s:.0f}s at seq {reader.next_seq} (of {last})"
                    ) from None
                chunk = await reader.take()
                if chunk:
                    yield chunk
            reader.check_bypass()
        finally:
            await reader.stop()


class _Reader:
    """One read: the consumer in use, where it is, and the messages the parser set aside."""

    def __init__(self, nc: Any, stream: str, first: int, last: int) -> None:
        self.nc, self.js, self.stream = nc, nc.jetstream(), stream
        self.next_seq, self.last = first, last
        self.sink = _Sink()
        self.sub: Any = None
        self.sid = b""
        self.consumer: str | None = None
        self.dseq = 1
        self.hole = False

    async def start(self) -> None:
        """Subscribe a fresh inbox (fast path first), then create the consumer that delivers to it."""
        inbox = self.nc.new_inbox()
        self.sub = await self.nc.subscribe(inbox)  # registered with nats-py too; its queue must stay empty
        self.sid = str(self.sub._id).encode()
        _attach(self.nc, self.sid, self.sink)
        self.dseq, self.hole = 1, False
        info = await self.js.add_consumer(
            self.stream,
            config=ConsumerConfig(
                deliver_subject=inbox,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.next_seq,
                ack_policy=AckPolicy.NONE,
                max_deliver=1,
                flow_control=True,
                idle_heartbeat=_HEARTBEAT_S,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=_INACTIVE_S,
            ),
        )
        self.consumer = info.name

    async def take(self) -> Chunk:
        """The data messages that arrived, in order; answers flow control and stalled heartbeats."""
        self.sink.wake.clear()
        items, self.sink.items = self.sink.items, []
        chunk: Chunk = []
        append = chunk.append
        answered = False
        dseq, next_seq, last = self.dseq, self.next_seq, self.last  # locals in the loop, stored after it
        for subject, reply, hdr, data in items:
            if hdr:  # flow control (answer to its reply) or heartbeat: no data (`_scan` keeps only a status)
                to = reply or _stalled(hdr)
                if to:
                    await self.nc.publish(to.decode())
                    answered = True
                continue
            toks = reply.split(b".")
            # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
            # (with domain and account hash: 12 tokens, the sequences at 7 and 8)
            sseq, cseq = (int(toks[5]), int(toks[6])) if len(toks) == 9 else (int(toks[7]), int(toks[8]))
            if cseq != dseq:  # the server dropped something for this consumer: start again after what we have
                self.hole = True
                break
            dseq += 1
            if sseq < next_seq:
                continue
            if sseq <= last:
                append((sseq, subject.decode(), data))
            next_seq = sseq + 1
            if next_seq > last:
                break
        self.dseq, self.next_seq = dseq, next_seq
        if answered:
            await _send_now(self.nc)
        return chunk

    def check_bypass(self) -> None:
        if self.sub is not None and self.sub._pending_queue.qsize():
            raise ProjectionError(f"reading {self.stream}: messages bypassed the fast reader; read again")

    async def stop(self) -> None:
        _detach(self.nc, self.sid)
        self.sink.items.clear()
        self.sink.wake.clear()
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()
        # not deleted (only admin may delete consumers): without interest, the server removes the
        # ephemeral consumer after its inactive threshold, as it does nats-py's ordered consumers
        self.consumer = None


async def _send_now(nc: Any) -> None:
    """Write what the client has buffered to the socket now: a flow-control answer left in the
    buffer until the caller has folded its chunk would hold the server back meanwhile (it sends
    the next window only once answered), so reading and folding would take turns."""
    flush = getattr(nc, "_flush_pending", None)
    if flush is not None:
        await flush(force_flush=True)


def _stalled(hdr: bytes) -> bytes:
    """The flow-control subject a stalled consumer's heartbeat names, or b""."""
    i = hdr.find(_STALLED)
    return hdr[i + len(_STALLED) :].split(_CRLF, 1)[0].strip() if i >= 0 else b""


async def _read_ordered(nc: Any, first: int, last: int, *, stream: str, idle_s: float) -> AsyncIterator[Chunk]:
    """nats-py's ordered consumer (the portable path)."""
    sub = await subscribe_ordered(nc, f"{S.ROOT}.>", stream=stream, start_seq=first, unbounded=True)
    try:
        seq = first - 1
        while seq < last:
            try:
                msg = await sub.next_msg(timeout=idle_s)
            except Exception as e:  # nats.errors.TimeoutError
                raise ProjectionError(f"reading {stream}: nothing arrived for {idle_s:.0f}s at seq {seq + 1}") from e
            seq = msg.metadata.sequence.stream
            if seq <= last:
                yield [(seq, msg.subject, msg.data)]
    finally:
        await sub.unsubscribe()


async def read_all(nc: Any, first: int, last: int, *, stream: str = S.STREAM) -> Chunk:
    """Every message from ``first`` to ``last`` in one list."""
    out: Chunk = []
    async for chunk in read_chunks(nc, first, last, stream=stream):
        out += chunk
    return out

"""How dispatches come into an agent: pull requests kept open for its free slots, the deliveries it
holds (beaten in progress until acked) and a backlog for a delivery that found no free slot.

nats-py's ``fetch(n)`` waits until it has ``n`` messages or its timeout, so taking "one dispatch,
then whatever else is there" cost two or three pull requests per dispatch, one of them waiting
out a short expiry and its 408 status. Here the agent keeps pull requests open on its durable
consumer for as many dispatches as it has free slots (`Intake.top_up`), each waiting up to
`REQUEST_S` on the server: a dispatch comes the moment it is stored, and a slot that frees asks
for one more, as one publish with no answer to wait for.

What is still owed is counted per request. A delivery takes one off the oldest request still
owing; a 408 (expired) or 409 (ended by the server: a leader change, a limit) status ends the
oldest request, and its ``Nats-Pending-Messages`` says what it still owed, which corrects the
count; after a reconnect (seen within `CHECK_S`) every open request is taken as lost, and a
request whose expiry passed `MARGIN_S` ago without its status is taken as ended too. Should the
count still be off, a delivery with no free slot waits in the backlog (beaten like the rest) until
one frees: the agent never runs more than its slots. (Requests of 1 s instead, renewed each second,
cost ~10 % more agent CPU per task in the throughput benchmark.)

Every delivery held, running or waiting, is marked in progress every third of the ack wait by
one beater (`Intake.beat_forever`), so JetStream delivers it again only when this agent is gone
or a delivery was lost on its way (then after the ack wait, not at once and not never).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors

log = logging.getLogger("niyantra.agent")
REQUEST_S = 5.0  # how long one pull request waits on the server for dispatches
MARGIN_S = 1.0  # a request this long past its expiry without a status is taken as ended
CHECK_S = 1.0  # how often the pull loop looks for a reconnect (which may have lost every request)
STATUS = "Status"
PENDING = "Nats-Pending-Messages"


@dataclass
class _Request:
    expires_at: float  # loop time
    owed: int


class Intake:
    """The dispatches one agent holds and the pull requests that bring more.

    ``start(seq)`` begins the handler of the delivery held under stream sequence ``seq`` (in
    `delivery`); the agent calls `finished` when that handler is done.
    """

    def __init__(self, nc: Any, next_subject: str, slots: int, start: Callable[[int], None]) -> None:
        self.nc = nc
        self.next_subject = next_subject  # $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
        self.slots = slots
        self._start = start
        self.delivery: dict[int, Any] = {}  # dispatch stream seq → its newest delivery (acked, beaten)
        self.running: set[int] = set()  # seqs whose handler runs
        self.backlog: deque[int] = deque()  # seqs delivered while every slot was taken
        self.wake = asyncio.Event()  # a slot freed or a request ended: top up
        self._requests: deque[_Request] = deque()
        self._inbox = ""
        self._sub: Any = None
        self._reconnects = 0

    async def open(self) -> None:
        """Subscribe the inbox the requested dispatches are delivered to."""
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._inbox, cb=self._receive)

    async def close(self) -> None:
        """Stop taking deliveries (what the server still sends for an open request goes nowhere
        and comes back after the ack wait, as any delivery not acked)."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):  # the connection is already closing
                await self._sub.unsubscribe()
            self._sub = None
        self._requests.clear()

    @property
    def free(self) -> int:
        return self.slots - len(self.running) - len(self.backlog)

    def owed(self, now: float) -> int:
        """Dispatches asked for and not delivered yet (requests past their expiry and margin dropped)."""
        while self._requests and self._requests[0].expires_at + MARGIN_S < now:
            self._requests.popleft()
        return sum(r.owed for r in self._requests)

    def forget_if_reconnected(self, reconnects: int) -> bool:
        """After a reconnect (``reconnects``: the client's count of them) the server may have lost
        every open request (another server, or one restarted): take them all as ended."""
        if reconnects == self._reconnects:
            return False
        self._reconnects = reconnects
        self._requests.clear()
        return True

    def next_expiry(self, now: float) -> float:
        """Seconds until the oldest request is taken as ended without its status (or `REQUEST_S`)."""
        return max(0.0, self._requests[0].expires_at + MARGIN_S - now) if self._requests else REQUEST_S

    async def top_up(self) -> None:
        """Ask for as many dispatches as there are free slots, less what is still owed."""
        now = asyncio.get_running_loop().time()
        more = self.free - self.owed(now)
        if more <= 0:
            return
        request = json.dumps({"batch": more, "expires": int(REQUEST_S * 1e9)}).encode()
        await self.nc.publish(self.next_subject, request, reply=self._inbox)
        self._requests.append(_Request(now + REQUEST_S, more))

    async def pull_forever(self, stop: asyncio.Event) -> None:
        """Keep requests open for the free slots until ``stop``."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.wake.clear()
            self.forget_if_reconnected(self.nc.stats["reconnects"])
            try:
                await self.top_up()
            except nats.errors.Error as e:  # transient (reconnecting): retry
                log.warning("pull request failed, retrying: %r", e)
                await asyncio.sleep(0.5)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(CHECK_S, self.next_expiry(loop.time())))

    async def _receive(self, msg: Any) -> None:
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is None:
            self._took_one()
            self.take(msg)
        elif status in ("408", "409"):
            self._ended(msg.headers.get(PENDING))
            if status == "409":
                log.info("pull request ended by the server: %s", msg.headers.get("Description", ""))
            self.wake.set()
        # other statuses (100 heartbeats, 404 for a no-wait request) end nothing we asked for

    def _took_one(self) -> None:
        for r in self._requests:
            if r.owed > 0:
                r.owed -= 1
                break
        while self._requests and self._requests[0].owed <= 0:
            self._requests.popleft()

    def _ended(self, pending: str | None) -> None:
        """The oldest request ended on the server, owing ``pending`` (when said)."""
        if not self._requests:
            return
        oldest = self._requests.popleft()
        try:
            still = int(pending) if pending is not None else oldest.owed
        except ValueError:
            still = oldest.owed
        # Deliveries are spread over the open requests, so ours may be counted against another:
        # what the ended one owed less what we thought it owed is moved to the others.
        diff = oldest.owed - still
        for r in self._requests:
            if diff == 0:
                break
            if diff > 0:
                r.owed, diff = r.owed + diff, 0
            else:
                cut = min(r.owed, -diff)
                r.owed, diff = r.owed - cut, diff + cut
        while self._requests and self._requests[0].owed <= 0:
            self._requests.popleft()

    def take(self, msg: Any) -> None:
        """A delivery: run it, or hold it until a slot frees (a delivery of a dispatch already
        held replaces the one its handler beats and acks; it does not run it twice)."""
        seq = msg.metadata.sequence.stream
        held = seq in self.delivery
        self.delivery[seq] = msg
        if held:
            return
        if self.free > 0:
            self.running.add(seq)
            self._start(seq)
        else:
            self.backlog.append(seq)

    def release(self, seq: int) -> bool:
        """The handler of ``seq`` is done with it (its outcome recorded and acked, or given up): its
        delivery is let go and its slot goes to the backlog's first. False when already released."""
        if seq not in self.running:
            return False
        self.running.discard(seq)
        self.delivery.pop(seq, None)
        if self.backlog:
            nxt = self.backlog.popleft()
            self.running.add(nxt)
            self._start(nxt)
        return True

    def finished(self, seq: int) -> None:
        """The handler's task of ``seq`` ended (however it ended): release it; the pull loop tops up."""
        if self.release(seq):
            self.wake.set()

    async def beat_forever(self, interval_s: float) -> None:
        """Mark every held delivery in progress every ``interval_s``."""
        while True:
            await asyncio.sleep(interval_s)
            for msg in list(self.delivery.values()):
                with contextlib.suppress(nats.errors.Error):  # reconnecting: the next beat retries
                    await msg.in_progress()


def next_subject(stream: str, consumer: str, api: str = "$JS.API") -> str:
    """The subject a pull request for ``consumer``'s next messages is published to."""
    return f"{api}.CONSUMER.MSG.NEXT.{stream}.{consumer}"

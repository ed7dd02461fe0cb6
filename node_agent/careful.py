"""Careful mode as an agent follows it: the heartbeat interval the decider asks for while confidence is low.

The decider appends `CarefulModeEntered` (with the ``observe_interval_s`` to use) when confidence
falls and `CarefulModeLeft` when it recovers (`orchestrator.decision.careful`), on
``ev.system.careful.*``. At start the agent reads the last event of each (two direct gets) and
follows the subjects with an ordered consumer from the later one, so an agent started in the middle
of an episode is careful too and none is missed between the read and the subscription. While
careful, the agent appends `NodeObserved` every ``observe_interval_s`` or its own interval, whichever
is shorter; a change wakes the observation loop at once (an observation then says the new state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats.errors
import nats.js.errors

from orchestrator.runtime.ordered import subscribe_ordered
from schemas import actions as act
from schemas import codec
from schemas import subjects as S
from schemas.errors import MalformedEvent

log = logging.getLogger("niyantra.agent")


class CarefulFollower:
    """The careful-mode interval this agent was asked for (None: none, its own applies)."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.observe_interval_s: float | None = None
        self.changed = asyncio.Event()
        self._sub: Any = None

    def interval(self, own: float) -> float:
        """Seconds between two observations now."""
        asked = self.observe_interval_s
        return own if asked is None else min(own, asked)

    async def start(self) -> None:
        """Take the last careful-mode event as the state, and follow the ones after it."""
        last = 0
        for subject in S.careful_subjects():
            with contextlib.suppress(nats.js.errors.NotFoundError):
                msg = await self.nc.jetstream().get_last_msg(S.STREAM, subject, direct=True)
                last = max(last, int(msg.seq or 0))
        filter_subject = f"{S.ROOT}.{S.CAREFUL_AGGREGATE}.*"
        self._sub = await subscribe_ordered(
            self.nc, filter_subject, stream=S.STREAM, start_seq=last or None, cb=self._on_message
        )

    async def close(self) -> None:
        """Stop following."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):  # connection already closing
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Any) -> None:
        try:
            event = codec.decode(msg.data, subject=msg.subject)
        except MalformedEvent as e:
            log.warning("skipped %s", e)
            return
        if isinstance(event, act.CarefulModeEntered) and event.observe_interval_s > 0:
            self.observe_interval_s = event.observe_interval_s
            log.warning("careful mode: observing every %gs (%s)", event.observe_interval_s, event.reason)
        elif isinstance(event, act.CarefulModeLeft):
            self.observe_interval_s = None
            log.warning("careful mode left: %s", event.reason)
        else:
            log.warning("skipped %s on %s: not a careful-mode event", type(event).__name__, msg.subject)
            return
        self.changed.set()

    async def wait(self, stop: asyncio.Event, own: float) -> None:
        """Until the next observation is due (``interval(own)`` seconds), careful mode changes, or ``stop``."""
        waiters = [asyncio.create_task(e.wait()) for e in (stop, self.changed)]
        try:
            await asyncio.wait(waiters, timeout=self.interval(own), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self.changed.clear()

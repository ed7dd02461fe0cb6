"""What stops an agent's work from outside: task and graph cancels, and drain requests.

The agent follows ``ev.task.*.*.TaskCancelled``, ``ev.graph.*.GraphCancelled`` and its own
``ev.node.<node>.NodeDrainRequested`` with ordered consumers that start at "new" (ordered
consumers resume without gaps after a reconnect):

- a cancel sets the cancel switch of every matching run: its process group is stopped (TERM,
  grace, KILL) and its result says ``cancelled``. After a ``TaskCancelled`` that result is
  fenced by the task's sequence guard (the cancel is the last event on the task), so the
  write side keeps the cancel as the one terminal state; after a ``GraphCancelled`` the result
  (failure, not retryable) is what ends the attempt.
- a cancel the agent missed (the graph was cancelled before a dispatch reached it) is caught
  by `graph_cancelled`, one direct read per dispatch.
- a drain request makes the agent start nothing more: running work finishes, dispatches
  still queued for the node are reported `TaskLost` (not started) so they run elsewhere, and
  every observation from then on says ``draining=True``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import nats.errors

from orchestrator.errors import EventLogUnavailable
from orchestrator.runtime.ordered import subscribe_ordered
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from schemas.errors import MalformedEvent

if TYPE_CHECKING:
    from node_agent.agent import Agent

log = logging.getLogger("niyantra.agent")


class Control:
    """The agent's cancel and drain subscriptions."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.draining = False
        self._subs: list[Any] = []
        self._cancelled: set[str] = set()  # graphs whose cancel this agent saw
        self._live: set[str] = set()  # graphs read as not cancelled while the subscriptions ran

    async def start(self) -> None:
        """Subscribe to cancels and to this node's drain requests."""
        task_cancels, graph_cancels = S.cancel_filters()
        for subject in (task_cancels, graph_cancels, S.drain_subject(self.agent.s.node_id)):
            sub = await subscribe_ordered(self.agent.nc, subject, stream=S.STREAM, cb=self._on_message)
            self._subs.append(sub)

    async def close(self) -> None:
        """Stop following."""
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error):  # connection already closing
                await sub.unsubscribe()
        self._subs.clear()

    async def _on_message(self, msg: Any) -> None:
        try:
            event = codec.decode(msg.data, subject=msg.subject)
        except MalformedEvent as e:
            log.warning("skipped %s", e)
            return
        match event:
            case ev.TaskCancelled(graph_id=g, task_id=t, by=by, reason=why):
                self.cancel(lambda d: (d.graph_id, d.task_id) == (g, t), _why(f"task cancelled by {by}", why))
            case ev.GraphCancelled(graph_id=g, by=by, reason=why):
                self._cancelled.add(g)
                self._live.discard(g)
                self.cancel(lambda d: d.graph_id == g, _why(f"graph {g} cancelled by {by}", why))
            case ev.NodeDrainRequested(node_id=n, by=by) if n == self.agent.s.node_id:
                await self.drain(by)
            case _:
                log.warning("skipped %s on %s: not a cancel or drain for this node", type(event).__name__, msg.subject)

    def cancel(self, matches: Any, reason: str) -> int:
        """Set the cancel switch of every run whose dispatch ``matches``; return how many."""
        hit = 0
        for run in list(self.agent.running.values()):
            if matches(run.dispatch) and not run.cancel.is_set():
                run.reason.append(reason)
                run.cancel.set()
                hit += 1
                d = run.dispatch
                log.warning("%s/%s attempt %d: %s; stopping it", d.graph_id, d.task_id, d.attempt, reason)
        return hit

    async def drain(self, by: str) -> None:
        """Take no more work; say so at once in an observation."""
        if self.draining:
            return
        self.draining = True
        log.warning(
            "drain requested by %s: finishing %d running task(s), starting no more", by, len(self.agent.running)
        )
        try:
            await self.agent.observe()
        except EventLogUnavailable as e:  # the periodic observation reports it next time
            log.warning("observation not recorded: %s", e)

    async def graph_cancelled(self, graph_id: str) -> bool:
        """Tell whether the graph was cancelled: one direct read of its cancel subject the first
        time; after that the cancel subscription (running since before the read) tells, so a
        graph's later dispatches cost no round trip."""
        if graph_id in self._cancelled:
            return True
        if graph_id in self._live:
            return False
        subject = S.subject(S.graph_aggregate(graph_id), "GraphCancelled")
        try:
            cancelled = await self.agent.log.last_seq(subject) > 0
        except EventLogUnavailable as e:  # unknown: run it; a cancel seen later still stops it
            log.warning("cannot check whether graph %s was cancelled: %s", graph_id, e)
            return False
        if cancelled:
            self._cancelled.add(graph_id)
        elif self._subs and graph_id not in self._cancelled:  # a cancel from now on arrives by subscription
            self._live.add(graph_id)
        return cancelled


def _why(what: str, reason: str) -> str:
    return f"{what}: {reason}" if reason else what

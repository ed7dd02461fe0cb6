"""Careful mode on a real agent and nats-server: after a `CarefulModeEntered` the agent's heartbeats
(`NodeObserved`) come at the interval it names, an agent started mid-episode is careful too, and
after `CarefulModeLeft` each goes back to its own (long) interval. Measured by counting
observations, with deadline-based waits; the agents' own interval (60 s) is far longer than any wait."""

from __future__ import annotations

import asyncio

from orchestrator.writeside.eventlog import EventLog
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import assert_eventually
from tests.integration.agent_support import agent_running, now

OWN_S = 60.0  # the agents' own interval: no second observation of theirs within a test
CAREFUL_S = 0.2


async def observed(log: EventLog, node: str, after_seq: int) -> list[tuple[int, ev.NodeObserved]]:
    """The `NodeObserved` of ``node`` after ``after_seq``, with their sequences."""
    return await log.read_events(S.subject(S.node_aggregate(node), "NodeObserved"), after_seq=after_seq)  # type: ignore[return-value]


async def observations(log: EventLog, node: str, after_seq: int, interval: float) -> int:
    """How many `NodeObserved` of ``node`` after ``after_seq`` say they were made at ``interval``."""
    return sum(1 for _, e in await observed(log, node, after_seq) if e.observe_interval_s == interval)


def entered(interval: float) -> ev.CarefulModeEntered:
    return ev.CarefulModeEntered(event_id="careful:enter:t", occurred_at=now(), confidence=0.7, threshold=0.8,
                                 observe_interval_s=interval, reason="test")  # fmt: skip


async def test_agents_observe_at_the_careful_interval_while_it_lasts(nc, nats_server, tmp_path):
    log = EventLog(nc)
    await log.ensure_stream()
    careful = f"{S.ROOT}.{S.CAREFUL_AGGREGATE}.>"
    async with agent_running(nats_server.url, tmp_path / "n1", node="n1", observe_interval_s=OWN_S):
        start = await log.last_seq()
        seq = await log.append_event(entered(CAREFUL_S), expected_seq=await log.last_seq(careful))

        async def n1_careful() -> bool:
            return await observations(log, "n1", seq, CAREFUL_S) >= 10

        # ten observations at 0.2 s take 2 s; at its own 60 s it could not make them in the deadline
        await assert_eventually(n1_careful, timeout=30, message="n1 observes every 0.2 s")
        assert len(await observed(log, "n1", start)) >= 10
        async with agent_running(nats_server.url, tmp_path / "n2", node="n2", observe_interval_s=OWN_S):
            joined = await log.last_seq()

            async def n2_careful() -> bool:  # started mid-episode: it read the last event at start
                return await observations(log, "n2", joined, CAREFUL_S) >= 5

            await assert_eventually(n2_careful, timeout=30, message="n2, started while careful, observes every 0.2 s")
            left = ev.CarefulModeLeft(event_id="careful:leave:t", occurred_at=now(), confidence=0.95, threshold=0.9)
            left_seq = await log.append_event(left, expected_seq=await log.last_seq(careful))

            async def settled() -> dict[str, int] | None:  # each agent woke on the change and observed at 60 s
                seqs = {}
                for n in ("n1", "n2"):
                    own = [s for s, e in await observed(log, n, left_seq) if e.observe_interval_s == OWN_S]
                    if not own:
                        return None
                    seqs[n] = own[0]
                return seqs

            back = await assert_eventually(settled, timeout=30, message="both agents saw careful mode end")
            assert isinstance(back, dict)
            await asyncio.sleep(2.0)  # a window 10 careful intervals long: back at 60 s, none fall in it
            after = {n: len(await observed(log, n, back[n])) for n in ("n1", "n2")}
    assert after == {"n1": 0, "n2": 0}

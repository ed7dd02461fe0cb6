"""Careful mode on a real agent and nats-server: after a `CarefulModeEntered` the agent's heartbeats
(`NodeObserved`) come at the interval it names, an agent started mid-episode is careful too, and
after `CarefulModeLeft` each goes back to its own (long) interval. Measured by counting
observations, with deadline-based waits; the agents' own interval (60 s) is far longer than any wait.
Then the whole system: a miss makes the real decider enter careful mode, hits make it leave."""

from __future__ import annotations

import asyncio

from orchestrator.cli.replay import read_messages
from orchestrator.decision.careful import NOTE, CarefulConfig
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.replay.check import check
from orchestrator.writeside.eventlog import EventLog
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from schemas import subjects as S
from tests.conftest import assert_eventually
from tests.integration.agent_support import agent_running, now
from tests.integration.harness import submit, system

OWN_S = 60.0  # the agents' own interval: no second observation of theirs within a test
CAREFUL_S = 0.2


async def observed(log: EventLog, node: str, after_seq: int) -> list[tuple[int, ev.NodeObserved]]:
    """The `NodeObserved` of ``node`` after ``after_seq``, with their sequences."""
    return await log.read_events(S.subject(S.node_aggregate(node), "NodeObserved"), after_seq=after_seq)  # type: ignore[return-value]


async def observations(log: EventLog, node: str, after_seq: int, interval: float) -> int:
    """How many `NodeObserved` of ``node`` after ``after_seq`` say they were made at ``interval``."""
    return sum(1 for _, e in await observed(log, node, after_seq) if e.observe_interval_s == interval)


def entered(interval: float) -> act.CarefulModeEntered:
    return act.CarefulModeEntered(event_id="careful:enter:t", occurred_at=now(), confidence=0.7, threshold=0.8,
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
            left = act.CarefulModeLeft(event_id="careful:leave:t", occurred_at=now(), confidence=0.95, threshold=0.9)
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


CONFIG = DeciderConfig(
    careful=CarefulConfig(enter_below=0.99, leave_at=1.0, observe_interval_s=CAREFUL_S),
    scoring=ScoringConfig(flag_after=1000),
)


async def test_a_miss_enters_careful_mode_on_a_real_system_and_successes_leave_it(nats_server, tmp_path):
    """The real decider, projectors (confidence too) and agent: one failing task is a miss (0.95 <
    0.99): careful mode, the agent observes every 0.2 s, five tasks go shortest estimate first and
    their hits (1.00) end it; ``replay --check`` re-derives every decision, both careful events too."""
    url = nats_server.url

    async def events() -> list[object]:
        return [codec.decode(m.data) for m in await read_messages(url)]

    def first(kind: type) -> object:
        async def found() -> object:
            return next((e for e in await events() if isinstance(e, kind)), None)

        return found

    async with system(url, tmp_path / "work", agents=1, slots=1, decider_config=CONFIG, confidence=True):
        await submit(url, GraphSpec(id="bad", title="", tasks=(rec.TaskSpec(id="x", command="false"),)))
        entered = await assert_eventually(first(act.CarefulModeEntered), timeout=30, message="careful mode entered")
        assert isinstance(entered, act.CarefulModeEntered) and entered.observe_interval_s == CAREFUL_S

        async def careful_observations() -> bool:
            return (
                sum(1 for e in await events() if isinstance(e, ev.NodeObserved) and e.observe_interval_s == CAREFUL_S)
                >= 5
            )

        await assert_eventually(careful_observations, timeout=30, message="node-1 observes every 0.2 s")
        tasks = tuple(rec.TaskSpec(id=f"t{s}", command="true", estimate_s=float(s)) for s in (5, 3, 1, 4, 2))
        await submit(url, GraphSpec(id="ok", title="", tasks=tasks))
        await assert_eventually(first(act.CarefulModeLeft), timeout=60, message="careful mode left after five hits")
    log = await events()
    order = [e.task_id for e in log if isinstance(e, ev.TaskDispatched) and e.graph_id == "ok"]
    assert order == ["t1", "t2", "t3", "t4", "t5"]  # smallest estimate first (eft alone: t5 first)
    assert all(NOTE in e.strategy for e in log if isinstance(e, ev.TaskDispatched) and e.graph_id == "ok")
    kinds = [type(e).__name__ for e in log]
    assert kinds.count("CarefulModeEntered") == 1 and kinds.count("CarefulModeLeft") == 1
    report = check(await read_messages(url), base=CONFIG)
    assert report["mismatches"] == [] and report["decisions"] == 8, report["mismatches"][:2]

"""The watchdog on a real server: silence becomes NodeLost and TaskLost, deadlines become
PredictionExpired, each exactly once however many watchdogs run, and a late result is fenced."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import msgspec
import pytest

from orchestrator.errors import ConcurrencyConflict
from orchestrator.processes.watchdog import WatchdogConfig, WatchdogState, run_watchdog
from orchestrator.writeside.eventlog import EventLog
from projections.confidence.fold import ConfidenceSummary, Prediction
from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView
from projections.runner import run_projector
from schemas import events as ev
from schemas import records as rec
from schemas import subjects as S
from tests.conftest import assert_eventually


async def kv_value(nc, bucket, key, typ):
    import nats.js.errors

    kv = await nc.jetstream().key_value(bucket)
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return None
    return msgspec.json.decode(entry.value, type=typ)


async def counts(nc) -> Counter[str]:
    msgs = await EventLog(nc).read(f"{S.ROOT}.>", limit=100_000)
    return Counter(m.headers.get(S.HDR_TOPIC, "") for m in msgs)


def now():
    return datetime.now(UTC)


class World:
    """Projectors and watchdogs in-process against the test's server."""

    def __init__(self, url, watchdogs=2, **confidence):
        self.url = url
        self.stop = asyncio.Event()
        self.states = [WatchdogState() for _ in range(watchdogs)]
        self.confidence = confidence
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        ready = []
        for name in ("readiness", "node-scores", "confidence"):
            e = asyncio.Event()
            ready.append(e)
            params = self.confidence if name == "confidence" else None
            self.tasks.append(asyncio.create_task(run_projector(name, self.url, self.stop, e.set, params)))
        config = WatchdogConfig(observe_interval_s=0.2, missed=2, tick_s=0.05)
        for i, st in enumerate(self.states):
            e = asyncio.Event()
            ready.append(e)
            self.tasks.append(
                asyncio.create_task(
                    run_watchdog(
                        self.url,
                        self.stop,
                        WatchdogConfig(**{**config.__dict__, "watchdog_id": f"w{i}"}),
                        on_ready=e.set,
                        state=st,
                    )
                )
            )
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 20)
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]

    async def more_rounds(self, n=3):
        start = [s.rounds for s in self.states]
        await assert_eventually(lambda: all(s.rounds >= r + n for s, r in zip(self.states, start, strict=True)))


async def append(log: EventLog, event, expected_seq=None):
    return await log.append_event(event, expected_seq=expected_seq)


def dispatch(task, node, attempt=1, expected=None):
    return ev.TaskDispatched(
        event_id=f"d:{task}:{attempt}",
        occurred_at=now(),
        graph_id="g",
        task_id=task,
        node_id=node,
        attempt=attempt,
        command="true",
        expected_duration_s=expected,
    )


GRAPH = ev.GraphSubmitted(
    event_id="s:g",
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    graph_id="g",
    tasks=(rec.TaskSpec(id="a", command="true"), rec.TaskSpec(id="b", command="true", depends_on=("a",))),
)


@pytest.mark.timeout(60)
async def test_a_silent_node_is_lost_once_and_its_attempt_is_ready_again(nats_server, nc):
    log = EventLog(nc)
    await log.ensure_stream()
    await append(log, GRAPH)
    await append(log, ev.NodeRegistered(event_id="r", occurred_at=now(), node_id="n1", slots=1, observe_interval_s=0.2))
    dispatch_seq = await append(log, dispatch("a", "n1"))
    async with World(nats_server.url) as world:

        async def ready_again():
            t = await kv_value(nc, S.KV_READINESS, "task.g.a", TaskView)
            return t is not None and t.state == "ready" and t.lost == 1 and t

        a = await assert_eventually(ready_again)
        assert "lost on n1" in a.reason
        node = await kv_value(nc, S.KV_NODE_SCORES, "node.n1", NodeView)
        assert node.lost and node.active == () and "missed 2 observations" in node.lost_reason
        await world.more_rounds()
        c = await counts(nc)
        assert (c["NodeLost"], c["TaskLost"]) == (1, 1)
        late = ev.TaskCompleted(
            event_id="late", occurred_at=now(), graph_id="g", task_id="a", node_id="n1", attempt=1, outcome="success"
        )
        with pytest.raises(ConcurrencyConflict):  # the agent guards its result on what it last saw
            await log.append_event(late, expected_seq=dispatch_seq)


@pytest.mark.timeout(60)
async def test_a_passed_deadline_becomes_one_prediction_expired_and_a_miss(nats_server, nc):
    log = EventLog(nc)
    await log.ensure_stream()
    await append(log, GRAPH)
    await append(
        log, ev.NodeRegistered(event_id="r", occurred_at=now(), node_id="n1", slots=1, observe_interval_s=3600)
    )
    await append(log, dispatch("a", "n1", expected=0.2))
    async with World(nats_server.url, deadline_grace_s=0.0, deadline_factor=1.0) as world:

        async def missed():
            p = await kv_value(nc, S.KV_CONFIDENCE, "prediction.g.a", Prediction)
            return p is not None and p.status == "miss" and p

        p = await assert_eventually(missed)
        assert p.reason.startswith("expired")
        summary = await kv_value(nc, S.KV_CONFIDENCE, "summary", ConfidenceSummary)
        assert (summary.misses, summary.confidence, summary.level) == (1, 0.95, "full")
        await world.more_rounds()
        assert (await counts(nc))["PredictionExpired"] == 1


@pytest.mark.timeout(30)
async def test_the_task_entries_are_followed_only_while_wanted(nats_server, nc):
    from orchestrator.processes.watchdog import HeldTasks
    from projections.buckets import ensure_bucket
    from projections.readiness.fold import GraphView

    await ensure_bucket(nc, S.KV_READINESS)
    kv = await nc.jetstream().key_value(S.KV_READINESS)
    enc = msgspec.json.encode
    await kv.put("graph.g", enc(GraphView(graph_id="g", total=2)))
    await kv.put("task.g.a", enc(TaskView(graph_id="g", task_id="a", command="true", state="running", node="n1")))
    held = HeldTasks(nc)
    await held.follow(False)
    assert held.values() == {} and held.mirror is None  # no node lost: nothing followed
    await held.follow(True)
    assert set(held.values()) == {"task.g.a"}  # loaded once follow returns; the graph entry is not taken in
    await kv.put("task.g.b", enc(TaskView(graph_id="g", task_id="b", command="true", state="dispatched", node="n1")))
    await assert_eventually(lambda: set(held.values()) == {"task.g.a", "task.g.b"})
    await held.follow(False)
    assert held.values() == {} and held.mirror is None

"""Pause on error rate on a real system (nats-server, projectors, a decider, an agent): a burst of
failing tasks pauses their graph with an alert, probes run once it is half-open, the pause lifts
after the build is fixed and probes succeed, and ``replay --check`` re-derives every decision,
the pause and the resume too."""

from __future__ import annotations

from collections import Counter

from orchestrator.cli.replay import read_messages
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.pause import PauseConfig
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.graphs.graphfile import GraphSpec
from orchestrator.replay.check import check
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas import records as rec
from tests.conftest import assert_eventually
from tests.integration.harness import submit, system

CONFIG = DeciderConfig(
    pause=PauseConfig(threshold=0.5, resume_below=0.45, min_completions=3, probe_after_s=1.0),
    scoring=ScoringConfig(flag_after=1000),  # (failures in a row would also flag the type on the node)
)


async def _events(url: str) -> list[object]:
    return [codec.decode(m.data) for m in await read_messages(url)]


async def test_a_burst_of_failures_pauses_the_graph_and_successes_lift_it(nats_server, tmp_path):
    url, broken = nats_server.url, tmp_path / "broken"
    broken.write_text("the build is broken while this file exists\n")
    tasks = tuple(rec.TaskSpec(id=f"t{i:02d}", command=f"test ! -e '{broken}'") for i in range(16))
    async with system(url, tmp_path / "work", agents=1, slots=2, decider_config=CONFIG):
        await submit(url, GraphSpec(id="g", title="", tasks=tasks))

        async def paused() -> list[object]:
            return [e for e in await _events(url) if isinstance(e, act.GraphPaused)]

        [pause] = await assert_eventually(paused, timeout=30, message="the graph paused")
        broken.unlink()  # the build is fixed: probes succeed from here

        async def finished() -> list[object] | None:
            events = await _events(url)
            done = [e for e in events if isinstance(e, ev.TaskCompleted)]
            return events if len(done) == 16 else None

        events = await assert_eventually(finished, timeout=60, message="every task ended")
    assert pause.graph_id == "g" and pause.rate >= 0.5 and pause.by == ""
    alerts = [e for e in events if isinstance(e, act.Alert) and e.kind == "pause"]
    assert len(alerts) == 1 and alerts[0].about == "g" and "niyantra resume g" in alerts[0].message
    resumed = [e for e in events if isinstance(e, act.GraphResumed)]
    assert len(resumed) == 1 and resumed[0].rate < 0.45
    order = [type(e).__name__ for e in events if isinstance(e, act.GraphPaused | act.GraphResumed | ev.TaskDispatched)]
    i, j = order.index("GraphPaused"), order.index("GraphResumed")
    assert i >= 2 and j > i + 1  # dispatches before the pause, probes between it and the resume
    dispatches = [e for e in events if isinstance(e, ev.TaskDispatched)]
    probes = dispatches[i : j - 1]  # (``order`` has i dispatches before the pause, j - i - 1 between)
    assert probes and all("probe of a paused graph" in d.strategy for d in probes)
    assert not any("probe" in d.strategy for d in dispatches[:i] + dispatches[j - 1 :])
    outcomes = Counter(e.outcome for e in events if isinstance(e, ev.TaskCompleted))
    assert outcomes["failure"] >= 3 and outcomes["success"] >= 1 and sum(outcomes.values()) == 16
    report = check(await read_messages(url), base=CONFIG)
    assert report["mismatches"] == [], report["mismatches"][:2]
    assert report["decisions"] == 16 + 2  # every dispatch, the pause and the resume

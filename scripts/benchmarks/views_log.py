"""The log the views benchmark rebuilds from (scripts/benchmarks/views_bench.py): events as the
system records a run of graphs of 1,000 tasks in chains of 10 (10 % of tasks fail, and the rest
of their chain is cancelled and never runs; 2 % of attempts are lost and tried again), with node
observations from 20 nodes in between. Deterministic for a seed."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestrator.decision.lifecycle import QUARANTINE_AFTER  # noqa: E402
from schemas import codec  # noqa: E402
from schemas import eventbase as evbase  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas import records as rec  # noqa: E402
from schemas import subjects as S  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NODES = [f"n{i}" for i in range(20)]
GRAPH_TASKS = 1000
# 2: a run as the system records it (a failed task's chain is cancelled and never dispatched, a lost
# attempt is tried again); 1 went on dispatching and completing cancelled and pending tasks, a
# third of the log stale events the folds ignore.
GENERATOR = 2


def generate(n: int, seed: int = 1):
    """(subject, payload) of about ``n`` events: graphs of tasks run to the end, observations between."""
    rng = random.Random(seed)
    count, g, t = 0, 0, 0.0
    while count < n:
        gid = f"g{g}"
        specs = tuple(
            rec.TaskSpec(
                id=f"t{i}",
                command="make",
                type=f"k{i % 7}",
                estimate_s=5.0,
                depends_on=(f"t{i - 1}",) if i % 10 else (),
            )
            for i in range(GRAPH_TASKS)
        )
        e = ev.GraphSubmitted(event_id=f"s{g}", occurred_at=T0 + timedelta(seconds=t), graph_id=gid, tasks=specs)
        yield S.route(e)[1], codec.encode(e)
        count += 1
        dead = False  # a chain's task failed: the rest of its chain is cancelled, and nothing runs it
        for i in range(GRAPH_TASKS):
            if i % 10 == 0:
                dead = False
            if dead:
                continue
            t += 0.05
            at = T0 + timedelta(seconds=t)
            node = rng.choice(NODES)
            batch: list[evbase.Event] = []
            for attempt in range(1, QUARANTINE_AFTER + 1):  # a lost attempt is tried again, as a real run does
                common = dict(graph_id=gid, task_id=f"t{i}", node_id=node, attempt=attempt)
                batch += [
                    ev.TaskDispatched(
                        event_id=f"d{g}.{i}.{attempt}",
                        occurred_at=at,
                        command="make",
                        expected_duration_s=5.0,
                        **common,
                    ),
                    ev.TaskStarted(event_id=f"b{g}.{i}.{attempt}", occurred_at=at, **common),
                ]
                r = rng.random()
                if r < 0.02 and attempt < QUARANTINE_AFTER:
                    batch.append(
                        ev.TaskLost(event_id=f"l{g}.{i}.{attempt}", occurred_at=at, reason="node lost", **common)
                    )
                    continue
                outcome = "failure" if r < 0.12 else "success"
                dead = outcome == "failure"  # one attempt allowed: it fails, and its chain is cancelled
                batch.append(
                    ev.TaskCompleted(
                        event_id=f"c{g}.{i}.{attempt}",
                        occurred_at=at,
                        outcome=outcome,
                        duration_s=rng.uniform(1, 9),
                        **common,
                    )
                )
                break
            if rng.random() < 0.45:
                batch.append(
                    ev.NodeObserved(
                        event_id=f"o{g}.{i}",
                        occurred_at=at,
                        node_id=node,
                        cpu_percent=50,
                        memory_percent=30,
                        load1=1.0,
                        running_tasks=1,
                    )
                )
            for e in batch:
                yield S.route(e)[1], codec.encode(e)
            count += len(batch)
            if count >= n:
                return
        g += 1

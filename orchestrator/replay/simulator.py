"""A simulator that runs the real decide round and the real projection folds on a virtual clock.

Each round is `decide_round`: dispatches and cache hits, and the round's other actions (pauses
and resumes on error rate, scaling proposals, as configured), recorded and folded like the
decider's. (Careful mode needs the confidence view, which the simulator does not fold.)

No NATS: events are folded straight into the readiness and node-scores views with increasing
sequence numbers. Simulated nodes run a task for ``estimate / speed`` seconds (the estimate is
the task's true duration at speed 1); the decider is never told the speeds, it learns them from
completions exactly as in production. The result is the makespan and how it compares with the
lower bound ``max(critical path at the fastest speed, total work / sum of speeds)``.

With a bandwidth and the tasks' output sizes (`Network`; WfCommons files carry them), a
completion records the task's outputs and a task sent to a node pays ``size / bandwidth`` for
each dependency output the node does not hold (it holds what it produced or fetched before),
before its run; every fetch gets the whole bandwidth (no contention). The agent's report of it
(``fetched_bytes``, ``fetch_seconds``) is how the decider learns the node's rate, as in
production; it is never told the bandwidth. The lower bound stays the compute-only one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from orchestrator.decision.decide import DeciderConfig, Views, decide_round
from orchestrator.graphs.shape import graph_shape
from orchestrator.graphs.submission import graph_events
from orchestrator.graphs.validation import GraphSpec
from projections.node_scores.fold import NodeScoresView, evolve_node_scores
from projections.readiness.fold import ReadinessView, evolve_readiness
from schemas import eventbase as evbase
from schemas import events as ev
from schemas import records as rec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimResult:
    """What `niyantra simulate` reports."""

    makespan_s: float
    lower_bound_s: float
    utilization: float
    tasks: int
    decisions: int
    policy: str
    nodes: int
    bandwidth_bps: float | None = None  # None: transfers cost nothing
    transferred_bytes: int = 0
    transfer_s: float = 0.0  # summed over every fetch

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with the ratio to the lower bound."""
        out: dict[str, object] = dataclasses.asdict(self)
        out["makespan_over_lower_bound"] = (
            round(self.makespan_s / self.lower_bound_s, 4) if self.lower_bound_s else None
        )
        return out


def lower_bound(spec: GraphSpec, speeds: list[float]) -> float:
    """max(critical path at the fastest speed, total work / sum of speeds)."""
    est = {t.id: t.estimate_s or 0.0 for t in spec.tasks}
    shape = graph_shape({t.id: t.depends_on for t in spec.tasks}, est)
    return max(shape.critical_path_s / max(speeds), sum(est.values()) / sum(speeds))


def output_records(sizes: Mapping[str, tuple[tuple[str, int], ...]]) -> dict[str, tuple[rec.ArtifactRecord, ...]]:
    """Each task's outputs as stored records: (file id, size) → path and size, the digest the
    SHA-256 of the file id (a simulated file's content is its name)."""
    return {
        task: tuple(rec.ArtifactRecord(path=f, digest=hashlib.sha256(f.encode()).hexdigest(), size=n) for f, n in files)
        for task, files in sizes.items()
    }


@dataclass
class Network:
    """The simulated links and what each node holds: every fetch at ``bandwidth_bps``.

    ``links``: ``"node"`` (default) gives each node one link, so a task's missing inputs arrive
    one after another (their summed size / bandwidth); ``"edge"`` is HEFT's model (Topcuoglu et
    al. 2002): each dependency's data comes over its own link at the full bandwidth, all at once
    (the largest dependency's missing bytes / bandwidth)."""

    bandwidth_bps: float
    outputs: Mapping[str, tuple[rec.ArtifactRecord, ...]]  # task id → what its success stores
    links: str = "node"
    held: dict[str, set[str]] = field(default_factory=dict)  # digest → nodes holding the blob
    bytes: int = 0
    seconds: float = 0.0
    producer: dict[str, str] = field(default_factory=dict)  # digest → the task that stores it

    def __post_init__(self) -> None:
        if self.links not in ("node", "edge"):
            raise ValueError(f"links must be 'node' or 'edge', not {self.links!r}")
        self.producer = {r.digest: task for task, records in sorted(self.outputs.items()) for r in records}

    def fetch(self, e: ev.TaskDispatched) -> tuple[int, float]:
        """Bytes and seconds the dispatch's node fetches before the run (then it holds them)."""
        by_dep: dict[str, int] = {}
        for r in e.dep_outputs:
            nodes = self.held.setdefault(r.digest, set())
            if e.node_id not in nodes:
                dep = self.producer.get(r.digest, "")
                by_dep[dep] = by_dep.get(dep, 0) + r.size
                nodes.add(e.node_id)
        missing = sum(by_dep.values())
        slowest = max(by_dep.values(), default=0) if self.links == "edge" else missing
        took = slowest / self.bandwidth_bps
        self.bytes += missing
        self.seconds += took
        return missing, took

    def produced(self, task_id: str, node_id: str) -> tuple[rec.ArtifactRecord, ...]:
        """The task's stored outputs (its node holds them)."""
        records = self.outputs.get(task_id, ())
        for r in records:
            self.held.setdefault(r.digest, set()).add(node_id)
        return records


class _World:
    def __init__(self) -> None:
        self.readiness = ReadinessView()
        self.nodes = NodeScoresView()
        self.seq = 0

    def apply(self, e: ev.AnyEvent) -> None:
        self.seq += 1
        evolve_readiness(self.readiness, e, self.seq)
        evolve_node_scores(self.nodes, e, self.seq)
        self.readiness.touched.clear()
        self.nodes.touched.clear()

    def act(self, actions: list[Any], keep: Any) -> None:
        """The round's pauses, resumes and scaling proposals: recorded and folded like the decider's."""
        for a in actions:
            keep(a.event)
            self.apply(a.event)

    def views(self) -> Views:
        seqs = {"readiness": self.seq, "node-scores": self.seq}
        types = {t.type: t for t in self.nodes.types.values()}
        r = self.readiness
        return Views(
            tasks=r.tasks,
            nodes=self.nodes.nodes,
            seqs=seqs,
            types=types,
            ready=r.ready,
            graphs=r.graphs,
            health=r.health,
        )


def simulate(
    spec: GraphSpec,
    speeds: list[float],
    config: DeciderConfig | None = None,
    *,
    runtimes: dict[str, float] | None = None,
    names: list[str] | None = None,
    assignments: dict[str, str] | None = None,
    network: Network | None = None,
    record: list[evbase.Event] | None = None,
) -> SimResult:
    """Run ``spec`` on nodes of the given speeds (one slot each); return the makespan and bounds.

    ``runtimes`` are the true durations at speed 1 (default: the estimates, which the decider
    sees either way); ``names`` name the nodes; ``assignments`` (if given) receives task → node;
    ``network`` (if given) makes the outputs real and their transfers cost time;
    ``record`` (if given) receives every decision event in order (scripts/benchmarks/decision_digest.py).
    """
    if not speeds or min(speeds) <= 0:
        raise ValueError("speeds must be positive numbers, one per node")
    config = dataclasses.replace(config or DeciderConfig(), node_ttl_s=float("inf"))
    world = _World()
    names = names or [f"n{i + 1:03d}" for i in range(len(speeds))]
    speed = dict(zip(names, speeds, strict=True))
    for name in names:
        world.apply(ev.NodeRegistered(event_id=f"reg:{name}", occurred_at=T0, node_id=name, slots=1))
    for submitted in graph_events(spec, T0, f"submit:{spec.id}"):
        world.apply(submitted)
    true_s = {t.id: t.estimate_s or 0.0 for t in spec.tasks}
    true_s.update(runtimes or {})
    keep = (record if record is not None else []).append
    running: list[tuple[float, int, ev.TaskDispatched, tuple[int, float]]] = []
    now, busy, decisions, n = 0.0, 0.0, 0, 0
    done = 0
    while True:
        at = T0 + timedelta(seconds=now)
        actions, round_ = decide_round(world.views(), at, config)
        world.act(actions, keep)
        for d in round_:
            e = d.event
            keep(e)
            if not isinstance(e, ev.TaskDispatched):
                continue  # a cache hit: the simulated graphs have no cache
            world.apply(e)
            world.apply(
                ev.TaskStarted(
                    event_id=f"start:{e.event_id}",
                    occurred_at=at,
                    graph_id=e.graph_id,
                    task_id=e.task_id,
                    node_id=e.node_id,
                    attempt=e.attempt,
                )
            )
            run = true_s[e.task_id] / speed[e.node_id] if e.phase == "run" else 0.0
            fetched = network.fetch(e) if network is not None and e.phase == "run" else (0, 0.0)
            if assignments is not None and e.phase == "run":
                assignments[e.task_id] = e.node_id
            busy += run
            decisions += 1
            n += 1
            heapq.heappush(running, (now + fetched[1] + run, n, e, fetched))
        if not running:
            break
        now, _, e, fetched = heapq.heappop(running)
        batch = [(e, fetched)]
        while running and running[0][0] <= now:
            batch.append(heapq.heappop(running)[2:])
        at = T0 + timedelta(seconds=now)
        for e, fetched in batch:
            run = true_s[e.task_id] / speed[e.node_id] if e.phase == "run" else 0.0
            stored = network.produced(e.task_id, e.node_id) if network is not None and e.phase == "run" else ()
            world.apply(
                ev.TaskCompleted(
                    event_id=f"done:{e.event_id}",
                    occurred_at=at,
                    graph_id=e.graph_id,
                    task_id=e.task_id,
                    node_id=e.node_id,
                    attempt=e.attempt,
                    outcome="success",
                    exit_code=0,
                    duration_s=run,
                    expected_duration_s=e.expected_duration_s,
                    phase=e.phase,
                    outputs=stored,
                    fetched_bytes=fetched[0],
                    fetch_seconds=fetched[1],
                )
            )
            done += e.phase == "run"
    if done != len(spec.tasks):
        stuck = sorted(t for (_, t), v in world.readiness.tasks.items() if v.state not in ("succeeded",))[:5]
        raise RuntimeError(f"simulation stopped with {len(spec.tasks) - done} tasks unfinished, e.g. {stuck}")
    timed = tuple(msgspec.structs.replace(t, estimate_s=true_s[t.id]) for t in spec.tasks) if runtimes else None
    bound = lower_bound(GraphSpec(spec.id, spec.title, timed) if timed else spec, speeds)
    return SimResult(
        makespan_s=round(now, 6),
        lower_bound_s=round(bound, 6),
        utilization=round(busy / (now * len(speeds)), 4) if now > 0 else 0.0,
        tasks=len(spec.tasks),
        decisions=decisions,
        policy=config.policy,
        nodes=len(speeds),
        bandwidth_bps=network.bandwidth_bps if network is not None else None,
        transferred_bytes=network.bytes if network is not None else 0,
        transfer_s=round(network.seconds, 6) if network is not None else 0.0,
    )

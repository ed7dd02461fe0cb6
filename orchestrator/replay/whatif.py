"""Counterfactuals: a recorded run re-played on the simulator with another decider config (pure).

From the log: the graph as submitted; each task's recorded duration on the node that ran it;
each node's learned efficiency (the node-scores fold at the end of the log). A task's true
duration at speed 1 is its recorded duration × that node's efficiency for its type; each node
becomes as many simulated one-slot nodes as it has slots, at its learned overall speed. The
run is simulated twice, with the recorded policy (the baseline, to separate the simulator's
error from the config's effect) and with the other config; the report gives both makespans,
the recorded one, and every task whose node changes between the two simulations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scoring import ScoringConfig, node_efficiency
from orchestrator.graphs.submission import GraphAssembly
from orchestrator.graphs.validation import GraphSpec
from orchestrator.replay.replayer import Replayer, Stored
from orchestrator.replay.simulator import simulate
from schemas import codec
from schemas import events as ev
from schemas.errors import MalformedEvent

SCORING_KEYS = {f.name for f in dataclasses.fields(ScoringConfig)}


def scoring_config(table: dict[str, Any], where: str = "config") -> ScoringConfig:
    """A ScoringConfig from a ``[decider]`` table; unknown keys are an error naming them."""
    unknown = sorted(set(table) - SCORING_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(SCORING_KEYS))}")
    return ScoringConfig(**table)


def _recorded(messages: Sequence[Stored], graph: str) -> tuple[ev.GraphSubmitted, dict[str, Any], str]:
    assembly = GraphAssembly()
    head: ev.GraphSubmitted | None = None
    runs: dict[str, Any] = {}
    policy = "eft"
    first = last = None
    for m in messages:
        if f".{graph}." not in m.subject:
            continue
        try:
            e = codec.decode(m.data, subject=m.subject, seq=m.seq)
        except MalformedEvent:
            continue
        if isinstance(e, ev.GraphSubmitted | ev.GraphTasksAdded) and e.graph_id == graph:
            head = assembly.add(e) or head
        elif isinstance(e, ev.TaskDispatched) and e.graph_id == graph and e.phase == "run":
            policy = e.policy or policy
            first = first or e.occurred_at
        elif isinstance(e, ev.TaskCompleted) and e.graph_id == graph and e.phase == "run" and e.outcome != "failure":
            runs[e.task_id] = (e.node_id, e.duration_s)
            last = e.occurred_at
    if head is None:
        raise ValueError(f"no graph {graph!r} in the log")
    runs["_makespan"] = (last - first).total_seconds() if first and last else None
    return head, runs, policy


def whatif(messages: Sequence[Stored], graph: str, alternative: ScoringConfig) -> dict[str, Any]:
    """The recorded run of ``graph`` simulated with its recorded policy and with ``alternative``."""
    head, runs, policy = _recorded(messages, graph)
    recorded_makespan = runs.pop("_makespan")
    nodes = Replayer(messages).at("node-scores", messages[-1].seq if messages else 0).view.nodes
    baseline_cfg = ScoringConfig(policy=policy)
    kinds = {t.id: t.type for t in head.tasks}
    runtimes = {}
    for tid, (nid, dur) in runs.items():
        eff = node_efficiency(nodes[nid], kinds.get(tid, ""), baseline_cfg)[0] if nid in nodes else 1.0
        runtimes[tid] = dur * eff
    names, speeds = [], []
    for nid, node in sorted(nodes.items()):
        for i in range(max(node.slots, 1)):
            names.append(f"{nid}#{i}")
            speeds.append(node_efficiency(node, "", baseline_cfg)[0])
    if not names:
        raise ValueError("no node registered in the log")
    spec = GraphSpec(id=head.graph_id, title=head.title, tasks=head.tasks)
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    base = simulate(
        spec, speeds, DeciderConfig(scoring=baseline_cfg), runtimes=runtimes, names=names, assignments=before
    )
    alt = simulate(spec, speeds, DeciderConfig(scoring=alternative), runtimes=runtimes, names=names, assignments=after)
    changed = [
        {"task": t, "baseline": before[t].split("#")[0], "alternative": after[t].split("#")[0]}
        for t in sorted(before)
        if before[t].split("#")[0] != after.get(t, "").split("#")[0]
    ]
    return {
        "graph": graph,
        "recorded_policy": policy,
        "recorded_makespan_s": recorded_makespan,
        "simulated_baseline_makespan_s": base.makespan_s,
        "simulated_alternative_makespan_s": alt.makespan_s,
        "alternative": dataclasses.asdict(alternative),
        "tasks_with_recorded_durations": len(runtimes),
        "changed_decisions": changed,
    }

"""Cost of the follow-up-rule hook in a decider round, pure, without a server (prints JSON).

A graph of N trigger tasks that all ended, one rule whose ``when`` matches every one of them:
``covered`` — an integration task already covers each (the rule wants nothing: the steady state
of a large graph with rules), or ``uncovered`` — every trigger wants a task. Measured: one full
`generate` over the graph (what a round pays after a task of the graph changed state), and one
round through the decider's `followup.plan` once the graph is judged quiet (what every other round
pays). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from orchestrator.decision.decide import DeciderConfig, Views
from orchestrator.decision.generate import generate
from orchestrator.graphs.graphfile import build_graph
from orchestrator.graphs.submission import graph_events
from orchestrator.processes.followup import Quiet, plan
from projections.readiness.fold import ReadinessView, evolve_readiness
from schemas import events as ev

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def world(n: int, covered: bool) -> tuple[ReadinessView, int]:
    tasks = [{"id": f"t{i}", "command": "true", "type": "schema"} for i in range(n)]
    if covered:
        tasks += [{"id": f"c{i}", "command": "true", "type": "integration", "depends_on": [f"t{i}"]} for i in range(n)]
    rule = {
        "name": "it",
        "when": {"type": "schema"},
        "unless": {"type": "integration", "depends_on": "{task}"},
        "task": {"id": "{task}-it", "command": "x"},
    }
    spec = build_graph(
        "bench.toml", {"graph": {"id": "g", "generation_limit": 100_000}, "tasks": tasks, "rules": [rule]}
    )
    view, seq = ReadinessView(), 0
    events: list[ev.AnyEvent] = list(graph_events(spec, T0, "s"))
    for i in range(n):
        common = dict(occurred_at=T0, graph_id="g", task_id=f"t{i}", node_id="n", attempt=1)
        events += [
            ev.TaskDispatched(event_id=f"d{i}", command="true", **common),  # type: ignore[arg-type]
            ev.TaskCompleted(event_id=f"c{i}", outcome="success", **common),  # type: ignore[arg-type]
        ]
    for e in events:
        seq += 1
        view = evolve_readiness(view, e, seq)
    return view, seq


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    out: dict[str, dict[str, float | int]] = {}
    for n in (int(x) for x in args.sizes.split(",")):
        for covered in (True, False):
            view, seq = world(n, covered)
            seqs = {"readiness": seq}
            full = best(lambda: generate(view.tasks, view.graphs, seqs, T0), args.repeat)  # noqa: B023
            views = Views(tasks=view.tasks, nodes={}, seqs=seqs)
            quiet = Quiet()
            plan(views, view.graphs, T0, DeciderConfig(), quiet)  # judged once
            again = best(lambda: plan(views, view.graphs, T0, DeciderConfig(), quiet), args.repeat)  # noqa: B023
            out[f"{n} triggers, {'covered' if covered else 'uncovered'}"] = {
                "tasks": len(view.tasks),
                "full_generate_ms": round(full * 1000, 3),
                "quiet_round_ms": round(again * 1000, 3) if covered else None,  # uncovered: never quiet
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

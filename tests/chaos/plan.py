"""A chaos run's plan: `ChaosPlan` (what to run, which faults, the seed), the `Fault`s it fires
at seeded moments (`plan_faults`) and its graph of no-op tasks (`build_graph`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.writeside.api import Graph

GRAPH = "chaos"
PROJECTORS = ("projector-readiness", "projector-node-scores", "projector-confidence", "projector-archive")
LEASE_S = 15.0  # the watchdog's default lease: 3 missed observations of 5 s (orchestrator/processes/watchdog.py)


@dataclass(frozen=True)
class ChaosPlan:
    """What to run and which faults to inject (``seed`` fixes every random moment)."""

    seed: int = 1
    tasks: int = 1000  # no-op tasks, in layers of ``width``, each depending on two of the layer before
    width: int = 100
    agents: int = 3
    slots: int = 4
    cluster: int = 1
    auth: bool = True
    kill: tuple[str, ...] = ("decider", "watchdog", *PROJECTORS, "agent-node-1")
    rounds: int = 1  # how many times each process in ``kill`` is killed
    kill_server: bool = False  # SIGKILL one (seeded) server of the cluster mid-run, restart it later
    pause_agent: str | None = "agent-node-2"  # SIGSTOP past its lease, then SIGCONT
    hung_task: bool = True  # sleeps forever; its timeout ends each attempt
    poison_task: bool = True  # kills itself with SIGSEGV on every attempt
    timeout_s: float = 240.0


@dataclass
class Fault:
    """One planned fault: at what progress it fires and what happened."""

    kind: str  # kill | pause | kill-server
    target: str
    at_fraction: float
    restart_after_s: float
    fired_at_s: float | None = None
    fired_at_done: int | None = None
    restarted_at_s: float | None = None


def build_graph(plan: ChaosPlan) -> tuple[Graph, dict[str, str]]:
    """The graph and each task's expected end: ``succeeded``, ``failed`` or ``cancelled``."""
    g = Graph(GRAPH, title="chaos")
    expected: dict[str, str] = {}
    layers = max(1, plan.tasks // plan.width)
    for layer in range(layers):
        for i in range(plan.width):
            prev = layer - 1
            deps = [] if layer == 0 else sorted({f"L{prev}-{i}", f"L{prev}-{(i + 1) % plan.width}"})
            g.task(f"L{layer}-{i}", "true", depends_on=deps)
            expected[f"L{layer}-{i}"] = "succeeded"
    if plan.hung_task:
        g.task("hung", "sleep 3600", timeout=2.0, max_attempts=2)
        g.task("after-hung", "true", depends_on=["hung"])
        expected |= {"hung": "failed", "after-hung": "cancelled"}
    if plan.poison_task:
        g.task("poison", "kill -SEGV $$", max_attempts=2)
        g.task("after-poison", "true", depends_on=["poison"])
        expected |= {"poison": "failed", "after-poison": "cancelled"}
    return g, expected


def plan_faults(plan: ChaosPlan, rng: random.Random, servers: list[str]) -> list[Fault]:
    """Every fault at a random (seeded) fraction of the run, in firing order."""
    faults = [
        Fault("kill", name, rng.uniform(0.05, 0.85), rng.uniform(0.0, 1.5))
        for _ in range(plan.rounds)
        for name in plan.kill
    ]
    if plan.pause_agent:
        faults.append(Fault("pause", plan.pause_agent, rng.uniform(0.05, 0.4), LEASE_S + rng.uniform(2.0, 5.0)))
    if plan.kill_server:
        faults.append(Fault("kill-server", rng.choice(servers), rng.uniform(0.1, 0.6), rng.uniform(1.0, 4.0)))
    return sorted(faults, key=lambda f: f.at_fraction)

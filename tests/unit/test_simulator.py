"""The simulator: the real decide and folds on a virtual clock, speeds learned, never told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.sim import parse_speeds
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.graphs.graphfile import load_graph
from orchestrator.graphs.validation import GraphSpec
from orchestrator.replay.simulator import lower_bound, simulate
from schemas.records import TaskSpec

WORKLOADS = Path(__file__).resolve().parents[2] / "examples" / "workloads" / "wfcommons"


def chain(*durations: float) -> GraphSpec:
    tasks = [
        TaskSpec(id=f"t{i}", command="x", estimate_s=d, depends_on=(f"t{i - 1}",) if i else ())
        for i, d in enumerate(durations)
    ]
    return GraphSpec(id="c", title="", tasks=tuple(tasks))


def independent(n: int, d: float, kind: str = "k") -> GraphSpec:
    return GraphSpec(
        id="i", title="", tasks=tuple(TaskSpec(id=f"t{i}", command="x", estimate_s=d, type=kind) for i in range(n))
    )


def layered(layers: int, width: int) -> GraphSpec:
    tasks = []
    for layer in range(layers):
        for i in range(width):
            deps = () if layer == 0 else (f"L{layer - 1}-{i}", f"L{layer - 1}-{(i + 1) % width}")
            tasks.append(
                TaskSpec(
                    id=f"L{layer}-{i}",
                    command="x",
                    estimate_s=1.0 + (i * 7 + layer) % 5,
                    type=f"k{i % 3}",
                    depends_on=deps,
                )
            )
    return GraphSpec(id="l", title="", tasks=tuple(tasks))


def test_a_chain_takes_the_sum_of_its_durations():
    r = simulate(chain(10, 20, 5), [1.0])
    assert (r.makespan_s, r.lower_bound_s, r.tasks, r.decisions, r.utilization) == (35.0, 35.0, 3, 3, 1.0)


def test_the_lower_bound_is_critical_path_at_top_speed_or_work_over_total_speed():
    assert lower_bound(chain(10, 20), [2.0, 1.0]) == 15.0
    assert lower_bound(independent(30, 1.0), [2.0, 1.0]) == 10.0


def test_speeds_are_learned_so_the_fast_node_gets_more_work():
    r = simulate(independent(40, 10.0), [4.0, 1.0])
    assert r.makespan_s >= r.lower_bound_s == 80.0
    assert r.makespan_s <= 1.2 * r.lower_bound_s, r


def test_two_thousand_tasks_on_sixteen_nodes():
    speeds = [4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]
    r = simulate(layered(40, 50), speeds)
    assert r.tasks == r.decisions == 2000 and r.makespan_s >= r.lower_bound_s


def test_the_default_policy_beats_the_seed_formula_on_a_real_workflow():
    assert WORKLOADS.exists(), f"{WORKLOADS} is missing: the WfCommons instances ship with the repository"
    spec = load_graph(WORKLOADS / "epigenomics-n200-s1.json.gz")
    speeds = [4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]
    eft = simulate(spec, speeds)
    seed = simulate(spec, speeds, DeciderConfig(scoring=ScoringConfig(policy="seed")))
    assert eft.makespan_s < seed.makespan_s


def test_same_inputs_same_makespan():
    speeds = [2.0, 1.0, 0.5]
    assert simulate(layered(5, 6), speeds) == simulate(layered(5, 6), speeds)


@pytest.mark.parametrize(("text", "speeds"), [("4,2,1", [4.0, 2.0, 1.0]), ("2x1,0.5", [1.0, 1.0, 0.5])])
def test_speeds_option(text, speeds):
    assert parse_speeds(text) == speeds


@pytest.mark.parametrize("text", ["fast", "0", "-1", "2x0"])
def test_bad_speeds(text):
    with pytest.raises(ValueError):
        parse_speeds(text)


def test_simulate_command_json():
    result = CliRunner().invoke(app, ["simulate", "examples/demo.toml", "--speeds", "2,1,1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"makespan_s", "lower_bound_s", "utilization", "tasks", "policy"} <= set(data)
    assert data["tasks"] == 13 and data["policy"] == "eft" and data["makespan_s"] >= data["lower_bound_s"]
    bad = CliRunner().invoke(app, ["simulate", "examples/demo.toml", "--speeds", "fast"])
    assert bad.exit_code == 2 and "--speeds" in bad.output


def test_the_simulator_runs_the_rounds_other_actions_too():
    """Scaling on: ten 100 s tasks queued on one node past queued_after_s get one scale-up
    proposal (once for the episode), recorded and folded like the decider's; off, none."""
    from orchestrator.decision.scaling import ScalingConfig
    from orchestrator.replay.simulator import T0
    from schemas.actions import NodeScaleUpProposed

    spec = GraphSpec("wide", "", tuple(TaskSpec(id=f"t{i}", command="x", estimate_s=100.0) for i in range(10)))
    on = DeciderConfig(scaling=ScalingConfig(enabled=True, queued_after_s=60.0))
    record: list = []
    result = simulate(spec, [1.0], on, record=record)
    ups = [e for e in record if isinstance(e, NodeScaleUpProposed)]
    assert result.makespan_s == 1000.0 and len(ups) == 1
    assert (ups[0].occurred_at - T0).total_seconds() == 100.0  # the first round after 60 s queued
    plain: list = []
    simulate(spec, [1.0], DeciderConfig(), record=plain)
    assert not any(isinstance(e, NodeScaleUpProposed) for e in plain)

"""`niyantra simulate`: the real decide and folds on a virtual clock (registered on `orchestrator.cli.app.app`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.app import app, console, err, fail
from orchestrator.cli.graph import WfCommand, WfScale, _load, _print_problems
from orchestrator.errors import GraphFileError
from orchestrator.graphs.validation import DEFAULT_MAX_BYTES, DEFAULT_MAX_TASKS
from orchestrator.graphs.wfformat import DEFAULT_TEMPLATE


def parse_speeds(text: str) -> list[float]:
    """``"4,2,1,0.5"`` → [4.0, 2.0, 1.0, 0.5]; ``"16x1"`` → sixteen 1.0s."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        count, _, value = part.rpartition("x") if "x" in part else ("1", "", part)
        try:
            n, v = int(count), float(value)
        except ValueError as e:
            raise ValueError(f"{part!r} is not a speed (a number, or COUNTxSPEED like 16x1)") from e
        if v <= 0 or n <= 0:
            raise ValueError(f"{part!r}: speeds and counts must be positive")
        out += [v] * n
    return out


@app.command()
def simulate(
    workflow: Annotated[Path, typer.Argument(help="Any graph file `validate` accepts (TOML, JSON, WfFormat).")],
    *,
    speeds: Annotated[str, typer.Option("--speeds", help="Node speeds, e.g. 4,2,2,1 or 16x1.")],
    policy: Annotated[str, typer.Option("--policy", help="eft | seed | fifo")] = "eft",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    bandwidth: Annotated[
        str | None,
        typer.Option(
            "--bandwidth",
            help="Link speed for moving outputs between nodes, e.g. 100MB/s, 1GiB/s, 10Gbit/s "
            "(the WfCommons files' sizes; without it transfers cost nothing).",
        ),
    ] = None,
    wf_command: WfCommand = DEFAULT_TEMPLATE,
    wf_scale: WfScale = 1.0,
) -> None:
    """Run a workflow on simulated nodes (runtime = estimate / speed) with the real decider; no NATS."""
    from orchestrator.decision.decide import DeciderConfig
    from orchestrator.decision.scoring import POLICIES, ScoringConfig
    from orchestrator.decision.transfer import parse_bandwidth
    from orchestrator.replay.simulator import simulate as run

    if policy not in POLICIES:
        raise fail(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    try:
        node_speeds = parse_speeds(speeds)
    except ValueError as e:
        raise fail(f"--speeds: {e}") from e
    try:
        rate = parse_bandwidth(bandwidth) if bandwidth is not None else None
    except ValueError as e:
        raise fail(f"--bandwidth: {e}") from e
    try:
        spec = _load(workflow, DEFAULT_MAX_TASKS, DEFAULT_MAX_BYTES, wf_command, wf_scale, None)
        network = _network(workflow, rate) if rate is not None else None
    except GraphFileError as e:
        _print_problems(e)
        raise typer.Exit(2) from e
    missing = sum(1 for t in spec.tasks if t.estimate_s is None)
    if missing:
        err.print(f"note: {missing} tasks have no estimate; they take 0 s in the simulation", highlight=False)
    if network is not None and not network.outputs:
        err.print(f"note: {workflow} records no file sizes; transfers cost nothing", highlight=False)
    config = DeciderConfig(scoring=ScoringConfig(policy=policy))
    result = run(spec, node_speeds, config, network=network).as_dict()
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    console.print(
        f"{spec.id}: {result['tasks']} tasks on {result['nodes']} nodes, policy {policy}\n"
        f"  makespan {result['makespan_s']:.1f}s | lower bound {result['lower_bound_s']:.1f}s "
        f"(x{result['makespan_over_lower_bound']}) | utilization {result['utilization']:.1%} "
        f"| {result['decisions']} decisions"
        + (
            f"\n  transfers at {bandwidth}: {result['transferred_bytes']:,} bytes, {result['transfer_s']:.1f}s"
            if network is not None
            else ""
        ),
        highlight=False,
    )


def _network(workflow: Path, rate: float) -> Any:
    from orchestrator.graphs.graphfile import load_output_sizes
    from orchestrator.replay.simulator import Network, output_records

    return Network(rate, output_records(load_output_sizes(workflow)))

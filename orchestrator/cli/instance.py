"""`niyantra server`, `up`, `down`, `projector` and `decider`: the commands that start or stop an
instance's processes, and the decider's TOML configuration (`load_decider_config`); `autoscale`,
the scaling hook `up --autoscale` gives the decider (`orchestrator.runtime.autoscale`).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.app import DEFAULT_URL, DataDir, NatsUrl, ReadyFile, app, console, fail
from orchestrator.errors import OrchestratorError


@app.command()
def server(
    *,
    config: Annotated[Path | None, typer.Option(help="nats.conf to use.")] = None,
    port: Annotated[int, typer.Option(help="Client port.", envvar="NIYANTRA_PORT")] = 4222,
    data_dir: DataDir = Path(".niyantra"),
) -> None:
    """Run the venv's nats-server with nats.conf in the foreground."""
    from orchestrator.runtime.natsserver import default_config, server_args, server_env

    store = data_dir / "jetstream"
    args = server_args(config=config or default_config(), port=port, http_port=port + 4000, store_dir=store)
    os.execve(args[0], args, server_env(store))


@app.command()
def up(
    *,
    agents: Annotated[int, typer.Option(help="Node agents to start.")] = 3,
    slots: Annotated[int, typer.Option(help="Task slots per agent.")] = 2,
    detach: Annotated[bool, typer.Option(help="Return once everything is ready.")] = False,
    port: Annotated[int, typer.Option(help="Client port of nats-server.", envvar="NIYANTRA_PORT")] = 4222,
    data_dir: DataDir = Path(".niyantra"),
    config: Annotated[Path | None, typer.Option(help="nats.conf to use.")] = None,
    cluster: Annotated[
        int, typer.Option(help="nats-servers: 3 starts a JetStream cluster (ports PORT..PORT+2, R3 streams and views).")
    ] = 1,
    auth: Annotated[
        bool, typer.Option(help="Per-role NATS users; random passwords in DATA_DIR/run/credentials.json (0600).")
    ] = False,
    decider_config: Annotated[
        Path | None,
        typer.Option(envvar="NIYANTRA_DECIDER_CONFIG", help="TOML file with a [decider] table (docs/actions.md)."),
    ] = None,
    autoscale: Annotated[
        bool, typer.Option(help="Follow the decider's scaling proposals: start and stop agents here (docs/actions.md).")
    ] = False,
    max_agents: Annotated[int, typer.Option(help="With --autoscale: agents running at most.")] = 6,
    min_agents: Annotated[int, typer.Option(help="With --autoscale: agents kept running at least.")] = 1,
) -> None:
    """Start nats-server, the projectors, the decider and N agents as separate processes."""
    from orchestrator.runtime.scaleconfig import AutoscaleSettings
    from orchestrator.runtime.supervisor import UpSettings, down
    from orchestrator.runtime.supervisor import up as start

    try:
        scaling = AutoscaleSettings(max_agents=max(max_agents, agents), min_agents=min_agents, slots=slots)
    except ValueError as e:
        raise fail(f"--min-agents/--max-agents: {e}") from e
    try:
        m = start(
            UpSettings(
                data_dir=data_dir,
                port=port,
                agents=agents,
                slots=slots,
                config=config,
                cluster=cluster,
                auth=auth,
                decider_config=decider_config,
                autoscale=scaling if autoscale else None,
            )
        )
    except OrchestratorError as e:
        raise fail(str(e)) from e
    console.print(f"niyantra is up at {m.url} ({len(m.processes)} processes; data in {data_dir})")
    console.print(f"export NIYANTRA_NATS_URL={m.url}", soft_wrap=True)  # one line to copy, however long
    if cluster > 1:
        console.print(f"export NIYANTRA_REPLICAS={cluster}")
    if auth:
        creds = data_dir / "run" / "credentials.json"
        console.print(f"export NIYANTRA_USER=admin NIYANTRA_PASSWORD=$(jq -r .admin {creds})", soft_wrap=True)
    if detach:
        return
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    console.print(f"stopped: {', '.join(down(data_dir))}")


@app.command()
def down(*, data_dir: DataDir = Path(".niyantra")) -> None:
    """Stop exactly the processes `niyantra up` started for this data directory."""
    from orchestrator.runtime.supervisor import down as stop

    stopped = stop(data_dir)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {data_dir}")


@app.command(hidden=True)
def autoscale(*, data_dir: DataDir = Path(".niyantra")) -> None:
    """The scaling hook of `up --autoscale`: act on the proposal (JSON on stdin) with this instance's agents."""
    import json
    import sys

    from orchestrator.runtime.autoscale import follow

    try:
        proposal = json.loads(sys.stdin.read())
        said = follow(data_dir, proposal)
    except (ValueError, OrchestratorError) as e:
        raise fail(str(e)) from e
    console.print(said, highlight=False)


@app.command()
def projector(
    name: Annotated[str, typer.Argument(help="readiness | node-scores | confidence | archive")],
    *,
    nats_url: NatsUrl = DEFAULT_URL,
    ready_file: ReadyFile = None,
    archive_dir: Annotated[
        Path, typer.Option("--archive-dir", envvar="NIYANTRA_ARCHIVE_DIR", help="archive: where Parquet files go.")
    ] = Path(".niyantra/archive"),
    param: Annotated[
        list[str] | None, typer.Option("--param", help="K=V view parameter, e.g. half_life_s=900; repeatable.")
    ] = None,
) -> None:
    """Run one projector process: follow EVENTS and publish its view to KV (archive: Parquet files)."""
    from orchestrator.processes.shell import ready_marker, run_until_signalled, setup_logging
    from projections.runner import PROJECTIONS, run_projector

    if name == "archive":
        from projections.archive.projector import run_archiver

        setup_logging("projector-archive")
        run_until_signalled(lambda stop: run_archiver(nats_url, archive_dir, stop, ready_marker(ready_file)))
        return
    if name not in PROJECTIONS:
        raise fail(f"unknown projector {name!r}; choose from {', '.join(sorted([*PROJECTIONS, 'archive']))}")
    from orchestrator.cli.views import view_params

    params = view_params(name, param or [])
    setup_logging(f"projector-{name}")
    run_until_signalled(lambda stop: run_projector(name, nats_url, stop, ready_marker(ready_file), params))


def load_decider_config(path: str | None, **fixed: Any) -> Any:
    """The `DeciderConfig` of a TOML file's ``[decider]`` table (defaults without a file); a bad
    file or key is one line naming the file and the key."""
    import tomllib
    from pathlib import Path

    from orchestrator.decision.config import decider_config

    try:
        table = tomllib.loads(Path(path).read_text()).get("decider", {}) if path else {}
        return decider_config(table, f"{path}: [decider]", **fixed)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as e:
        raise fail(f"{path}: {e}" if path and str(path) not in str(e) else str(e)) from e


@app.command()
def decider(
    *,
    nats_url: NatsUrl = DEFAULT_URL,
    ready_file: ReadyFile = None,
    decider_id: Annotated[str, typer.Option(envvar="NIYANTRA_DECIDER_ID", help="Name in decisions.")] = "decider",
    policy: Annotated[str, typer.Option(help="Scoring policy: eft | seed | fifo.")] = "eft",
    timings: Annotated[
        str | None,
        typer.Option(envvar="NIYANTRA_DECIDER_TIMINGS", help="Append each round's timings (JSON lines) to this file."),
    ] = None,
    config_file: Annotated[
        str | None,
        typer.Option(
            "--config", envvar="NIYANTRA_DECIDER_CONFIG", help="TOML file with a [decider] table (docs/actions.md)."
        ),
    ] = None,
) -> None:
    """Run a stateless decider process."""
    from orchestrator.processes.decider import run_decider
    from orchestrator.processes.shell import ready_marker, run_until_signalled, setup_logging

    setup_logging(decider_id)
    from orchestrator.decision.scoring import POLICIES

    if policy not in POLICIES:
        raise fail(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    config = load_decider_config(config_file, decider_id=decider_id, policy=policy)

    async def main(stop: asyncio.Event) -> None:
        await run_decider(nats_url, stop, config, on_ready=ready_marker(ready_file), timings_path=timings)

    run_until_signalled(main)

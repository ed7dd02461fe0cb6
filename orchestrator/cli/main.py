"""The ``niyantra`` command line: parse, build settings, call one library function, render."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import nats
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.errors import OrchestratorError
from orchestrator.runtime.connection import connect as nats_connect

HELP = (
    "niyantra: an autonomous build orchestrator on NATS JetStream.\n\n"
    "Exit codes: 0 done; 1 a check failed (wait: a task did not succeed; verify: an invariant is violated; "
    "replay --check: a decision did not reproduce); 2 bad input, an unknown id, a refused command or an "
    "unreachable server (one line on stderr). An unexpected error is one line too; "
    "`niyantra --debug COMMAND` shows its traceback."
)

app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
DEBUG = {"on": False}


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", envvar="NIYANTRA_DEBUG", help="Show tracebacks.")] = False,
) -> None:
    DEBUG["on"] = debug


console = Console()
err = Console(stderr=True, soft_wrap=True)

DEFAULT_URL = "nats://127.0.0.1:4222"
NatsUrl = Annotated[str, typer.Option("--nats-url", envvar="NIYANTRA_NATS_URL", help="NATS server URL.")]
DataDir = Annotated[Path, typer.Option("--data-dir", envvar="NIYANTRA_DATA_DIR", help="Instance data directory.")]
ReadyFile = Annotated[Path | None, typer.Option("--ready-file", hidden=True, help="Touched once serving.")]
STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "running": "cyan",
    "dispatched": "blue",
    "ready": "yellow",
    "pending": "dim",
}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


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
) -> None:
    """Start nats-server, the projectors, the decider and N agents as separate processes."""
    from orchestrator.runtime.supervisor import UpSettings, down
    from orchestrator.runtime.supervisor import up as start

    try:
        m = start(
            UpSettings(
                data_dir=data_dir, port=port, agents=agents, slots=slots, config=config, cluster=cluster, auth=auth
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


async def _quiet(e: Exception) -> None:
    """nats-py reports connection errors here too; we report them once, ourselves."""


async def _connect(url: str) -> Any:
    try:
        return await nats_connect(
            url, connect_timeout=5, max_reconnect_attempts=1, allow_reconnect=False, error_cb=_quiet
        )
    except (OSError, nats.errors.Error) as e:
        raise fail(f"cannot connect to NATS at {url}: {e or type(e).__name__}") from e


def render_status(report: Any) -> Table:
    """A rich table of the status report."""
    table = Table(title=f"niyantra status (seq {report.seq})")
    for col in ("graph", "task", "state", "node", "try", "title / waiting for"):
        table.add_column(col)
    for t in report.tasks:
        style = STATE_STYLE.get(t["state"], "")
        detail = t["title"] or ""
        if t["waiting_for"]:
            detail = f"{detail}  [dim](waiting for {', '.join(t['waiting_for'])})[/dim]"
        if t["reason"]:
            detail = f"{detail}  [dim]{t['reason']}[/dim]"
        table.add_row(
            t["graph"],
            t["id"],
            f"[{style}]{t['state'].upper()}[/{style}]",
            t["node"] or "",
            str(t["attempt"] or ""),
            detail,
        )
    return table


class LazyLive:
    """A live display of ``render(item)`` for each item shown, started on the first one (so that
    an error before any picture, such as an unreachable server, stays one line)."""

    def __init__(self, render: Any) -> None:
        self.render = render
        self.live: Any = None

    def __call__(self, item: Any) -> None:
        if self.live is None:
            from rich.live import Live

            self.live = Live(self.render(item), console=console, refresh_per_second=4)
            self.live.start()
        else:
            self.live.update(self.render(item))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            if not console.is_terminal:
                console.line()  # outside a terminal the last picture ends without a newline


def totals_line(g: dict[str, Any]) -> str:
    """The article's totals line for one graph."""
    c = g["counts"]
    return (
        f"{g['id']}: Total tasks: {g['total']} | Completed: {c.get('succeeded', 0)} | Running: "
        f"{c.get('running', 0) + c.get('dispatched', 0)} | Ready: {c.get('ready', 0)} | Blocked: "
        f"{c.get('pending', 0)} | Failed: {c.get('failed', 0) + c.get('cancelled', 0)}"
    )


def _status(url: str, graph: str | None) -> Any:
    from orchestrator.reports.queries import read_status

    async def go() -> Any:
        nc = await _connect(url)
        try:
            return await read_status(nc, graph)
        finally:
            await nc.close()

    try:
        return asyncio.run(go())
    except OrchestratorError as e:
        raise fail(str(e)) from e


@app.command()
def status(
    *,
    graph: Annotated[str | None, typer.Option(help="Only this graph.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """The article's snapshot: every task's state, times, blockers, next node, priority (--json: rows)."""
    if as_json:
        import msgspec

        sys.stdout.write(msgspec.json.encode(_status(nats_url, graph)).decode() + "\n")
        return
    from orchestrator.cli.status import _snapshot, render

    console.print(render(asyncio.run(_snapshot(nats_url, graph))))


@app.command()
def schema() -> None:
    """Print the JSON Schema of every event, generated by msgspec."""
    from schemas.codec import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


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


def main() -> None:
    """Console-script entry point: an unexpected error is one line unless --debug."""
    try:
        app()
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, the traceback on request
        if DEBUG["on"] or "--debug" in sys.argv or os.environ.get("NIYANTRA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(type(e).__name__)}: {escape(str(e))} (--debug shows the traceback)")
        sys.exit(1)


# Command groups in their own modules register themselves on ``app`` when imported.
from orchestrator.cli import agent as cli_agent  # noqa: E402, F401,I001
from orchestrator.cli import archive as cli_archive  # noqa: E402, F401,I001
from orchestrator.cli import graph as cli_graph  # noqa: E402, F401,I001
from orchestrator.cli import ops as cli_ops  # noqa: E402, F401,I001
from orchestrator.cli import replay as cli_replay  # noqa: E402, F401,I001
from orchestrator.cli import sim as cli_sim  # noqa: E402, F401,I001
from orchestrator.cli import status as cli_status  # noqa: E402, F401,I001
from orchestrator.cli import views as cli_views  # noqa: E402, F401,I001
from orchestrator.cli import why as cli_why  # noqa: E402, F401,I001
from orchestrator.cli import artifacts as cli_artifacts  # noqa: E402, F401,I001
from orchestrator.cli import backlog as cli_backlog  # noqa: E402, F401,I001
from orchestrator.cli import wait as cli_wait  # noqa: E402, F401,I001
from orchestrator.cli import build as cli_build  # noqa: E402, F401,I001
from orchestrator.cli import console as cli_console  # noqa: E402,I001

cli_console.register(app, NatsUrl, DEFAULT_URL, fail, console)

if __name__ == "__main__":
    # As a script this file is ``__main__``; the command modules register on ``orchestrator.cli.main.app``.
    from orchestrator.cli.main import main as _main

    _main()

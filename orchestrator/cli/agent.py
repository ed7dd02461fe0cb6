"""`niyantra` commands about agents (registered on the app of `orchestrator.cli.app`).

- ``niyantra agent --node NAME [options]`` runs a node agent (the process entry point);
- ``niyantra agent drain NODE`` asks a node to finish what it runs and take no more;
- ``niyantra logs TASK [--attempt N] [--graph ID] [--phase preflight]`` prints a run's stored output.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, ReadyFile, _connect, app, console, err, fail
from orchestrator.errors import OrchestratorError
from schemas.errors import SchemaError

agent_app = typer.Typer(help="Run a node agent (--node NAME), or manage one (drain).")
app.add_typer(agent_app, name="agent")

Csv = Annotated[list[str] | None, typer.Option(help="Repeatable.")]


def _split(values: list[str] | None, env: str) -> tuple[str, ...] | None:
    """Repeated flag values, else the comma-separated environment variable, else None (default)."""
    if values:
        return tuple(v for item in values for v in item.split(",") if v)
    raw = os.environ.get(env)
    return tuple(v for v in raw.split(",") if v) if raw else None


def _settings(node: str, url: str, slots: int, label: list[str] | None, o: dict[str, Any]) -> Any:
    from node_agent.execution import ExecutionSettings
    from node_agent.settings import AgentSettings
    from node_agent.workspace import WORKSPACE_MODES
    from schemas.subjects import check_id

    check_id("node id", node)
    if slots < 1:
        raise ValueError(f"--slots must be at least 1, not {slots}")
    if o["workspace"] not in WORKSPACE_MODES:
        raise ValueError(f"--workspace must be one of {', '.join(WORKSPACE_MODES)}, not {o['workspace']!r}")
    if o["observe_interval"] <= 0:
        raise ValueError(f"--observe-interval must be positive, not {o['observe_interval']}")
    bad = [kv for kv in (label or []) if "=" not in kv]
    if bad:
        raise ValueError(f"--label takes K=V, not {bad[0]!r}")
    labels = dict(kv.split("=", 1) for kv in (label or []))
    ex: dict[str, Any] = {"workdir": o["workdir"], "workspace": o["workspace"], "grace_s": o["grace"]}
    if (passed := _split(o["env_pass"], "NIYANTRA_ENV_PASS")) is not None:
        ex["env_pass"] = passed
    if (patterns := _split(o["secret_pattern"], "NIYANTRA_SECRET_PATTERNS")) is not None:
        ex["secret_patterns"] = patterns
    return AgentSettings(
        node_id=node,
        url=url,
        slots=slots,
        labels=labels,
        observe_interval_s=o["observe_interval"],
        execution=ExecutionSettings(**ex),
    )


@agent_app.callback(invoke_without_command=True)
def agent(
    ctx: typer.Context,
    *,
    node: Annotated[str | None, typer.Option(envvar="NIYANTRA_NODE", help="Node id (subject-safe).")] = None,
    slots: Annotated[int, typer.Option(help="Tasks at once.")] = 2,
    label: Annotated[list[str] | None, typer.Option(help="K=V label; repeatable.")] = None,
    workdir: Annotated[Path, typer.Option(envvar="NIYANTRA_WORKDIR", help="Where workspaces live.")] = Path(
        ".niyantra/work"
    ),
    workspace: Annotated[str, typer.Option(help="task: a directory per task; shared: all in --workdir.")] = "task",
    observe_interval: Annotated[float, typer.Option(help="Seconds between observations.")] = 5.0,
    grace: Annotated[float, typer.Option(help="Seconds between TERM and KILL when stopping a task.")] = 5.0,
    env_pass: Annotated[
        list[str] | None, typer.Option(help="Variables every task gets (replaces the default set); repeatable.")
    ] = None,
    secret_pattern: Annotated[
        list[str] | None, typer.Option(help="Name pattern of secrets to redact (replaces the default); repeatable.")
    ] = None,
    nats_url: NatsUrl = DEFAULT_URL,
    ready_file: ReadyFile = None,
) -> None:
    """Run a node agent: register, pull this node's dispatches, run them, report."""
    if ctx.invoked_subcommand is not None:
        return
    from node_agent.agent import run_agent
    from orchestrator.processes.shell import ready_marker, run_until_signalled, setup_logging

    if node is None:
        raise fail("niyantra agent needs --node NAME (or a subcommand: drain)")
    options = {
        "workdir": workdir,
        "workspace": workspace,
        "observe_interval": observe_interval,
        "grace": grace,
        "env_pass": env_pass,
        "secret_pattern": secret_pattern,
    }
    try:
        settings = _settings(node, nats_url, slots, label, options)
    except (SchemaError, ValueError) as e:
        raise fail(f"bad agent option: {e}") from e
    setup_logging(f"agent-{node}")
    run_until_signalled(lambda stop: run_agent(settings, stop, ready_marker(ready_file)))


@agent_app.command()
def drain(
    node: Annotated[str, typer.Argument(help="Node id to drain.")],
    *,
    by: Annotated[str, typer.Option("--by", envvar="USER", help="Who asks (recorded).")] = "someone",
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Ask a node to finish its running tasks and take no more (appends NodeDrainRequested)."""
    from orchestrator.writeside.eventlog import EventLog
    from schemas import events as ev
    from schemas.subjects import check_id

    try:
        check_id("node id", node)
    except SchemaError as e:
        raise fail(str(e)) from e

    async def go() -> int:
        nc = await _connect(nats_url)
        try:
            log = EventLog(nc)
            event = ev.NodeDrainRequested(
                event_id=f"drain:{node}:{uuid.uuid4().hex}",
                occurred_at=datetime.now(UTC),
                node_id=node,
                by=by,
                reason=reason,
            )
            return await log.append_event(event)
        finally:
            await nc.close()

    try:
        seq = asyncio.run(go())
    except OrchestratorError as e:
        raise fail(str(e)) from e
    console.print(f"drain of {node} requested by {by} (seq {seq}); it finishes what it runs and takes no more")


@app.command()
def logs(
    task: Annotated[str, typer.Argument(help="TASK or GRAPH/TASK.")],
    *,
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest).")] = None,
    graph: Annotated[str | None, typer.Option(help="Graph of the task (needed if ids repeat).")] = None,
    phase: Annotated[str, typer.Option(help="run | preflight")] = "run",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the output as text).")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Print the stored output (redacted, capped) of one attempt of a task."""
    from node_agent.errors import AgentError
    from node_agent.logstore import LogStore

    if phase not in ("run", "preflight"):
        raise fail(f"--phase must be run or preflight, not {phase!r}")
    from orchestrator.cli.taskref import readings, resolve

    async def go() -> Any:
        nc = await _connect(nats_url)
        try:
            store = LogStore(nc)
            named = {t: await store.tasks_named(t) for _, t in readings(task, graph)}
            try:
                gid, t = resolve(task, graph, lambda g, t: [(k, t) for k in named[t] if g in (None, k)])
            except LookupError as e:
                raise fail(f"{e} has stored output") from e
            return await store.get(gid, t, attempt, phase)
        finally:
            await nc.close()

    try:
        stored = asyncio.run(go())
    except AgentError as e:
        raise fail(str(e)) from e
    if as_json:
        import json

        doc = {
            "subject": stored.subject,
            "attempt": stored.attempt,
            "node": stored.node_id,
            "exit_code": stored.exit_code,
            "output": stored.data.decode("utf-8", "replace"),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    exit_code = stored.exit_code or "none"
    err.print(f"[dim]{stored.subject}: attempt {stored.attempt} on {stored.node_id}, exit code {exit_code}[/dim]")
    sys.stdout.buffer.write(stored.data)
    sys.stdout.flush()

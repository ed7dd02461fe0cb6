"""`niyantra console`: the web console and `/metrics`.

`register` puts the command on the app `orchestrator.cli.main` passes in, with main's shared
option types and error helper, so this module imports nothing of the CLI (no import cycle).
Annotations are evaluated when the command is defined (no ``from __future__ import annotations``):
typer reads them, and the shared `NatsUrl` type is a local here.
"""

import asyncio
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer


def register(
    app: typer.Typer, nats_url_type: Any, default_url: str, fail: Callable[[str], typer.Exit], out: Any
) -> None:
    """Add ``console`` to ``app``; ``nats_url_type`` is main's ``NatsUrl`` option type."""
    NatsUrl = nats_url_type  # noqa: N806 -- a type alias, named like main's

    @app.command("console")
    def console_command(
        *,
        port: Annotated[int, typer.Option(help="Port to serve on.", envvar="NIYANTRA_CONSOLE_PORT")] = 8480,
        host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
        auth: Annotated[
            bool,
            typer.Option(
                "--auth/--no-auth",
                help="Require the instance's NATS credentials (HTTP Basic); on when NIYANTRA_USER is set.",
            ),
        ] = False,  # noqa: E501
        nats_url: NatsUrl = default_url,  # type: ignore[valid-type]
    ) -> None:
        """Serve the web console (runs, graphs, tasks, nodes, trust) and /metrics for Prometheus."""
        from orchestrator.console.app import ConsoleSettings
        from orchestrator.console.server import serve
        from orchestrator.errors import OrchestratorError

        settings = ConsoleSettings(
            nats_url=nats_url, host=host, port=port, auth=auth or bool(os.environ.get("NIYANTRA_USER"))
        )
        out.print(f"niyantra console on http://{host}:{port}/ (metrics at /metrics)")
        try:
            asyncio.run(serve(settings))
        except OrchestratorError as e:
            raise fail(str(e)) from e

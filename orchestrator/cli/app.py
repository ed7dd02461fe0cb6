"""The typer app every `niyantra` command registers on, and what the command modules share: the
consoles, ``fail``, the connection helper, the common options and the live display.

May import: the runtime's connection and the errors; never another CLI module. Like every command
module it imports what only some commands need (nats, the connection, rich.live) where it is used,
so that `niyantra --help` loads no client library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

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


def reset_consoles() -> None:
    """Make both consoles again for this process's terminal and environment, in place (every module
    holds them by reference): a child of the resident server has its caller's, not the server's."""
    console.__init__()  # type: ignore[misc]
    err.__init__(stderr=True, soft_wrap=True)  # type: ignore[misc]
    DEBUG["on"] = False

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


async def _quiet(e: Exception) -> None:
    """nats-py reports connection errors here too; we report them once, ourselves."""


async def _connect(url: str) -> Any:
    import nats

    from orchestrator.runtime.connection import connect as nats_connect

    try:
        return await nats_connect(
            url, connect_timeout=5, max_reconnect_attempts=1, allow_reconnect=False, error_cb=_quiet
        )
    except (OSError, nats.errors.Error) as e:
        raise fail(f"cannot connect to NATS at {url}: {e or type(e).__name__}") from e


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

"""The ``niyantra`` command line assembled: every command module registers on the typer app of
`orchestrator.cli.app` when imported here; `main` is the console-script entry point.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from orchestrator.cli.app import DEBUG, DEFAULT_URL, NatsUrl, app, console, err, fail

__all__ = ["app", "main"]

# Each command module registers its commands on `app` when imported; the order of imports is the
# order of `niyantra --help`.
from orchestrator.cli import instance as cli_instance  # noqa: E402, F401, I001
from orchestrator.cli import agent as cli_agent  # noqa: E402, F401
from orchestrator.cli import archive as cli_archive  # noqa: E402, F401
from orchestrator.cli import graph as cli_graph  # noqa: E402, F401
from orchestrator.cli import ops as cli_ops  # noqa: E402, F401
from orchestrator.cli import replay as cli_replay  # noqa: E402, F401
from orchestrator.cli import sim as cli_sim  # noqa: E402, F401
from orchestrator.cli import status as cli_status  # noqa: E402, F401
from orchestrator.cli import views as cli_views  # noqa: E402, F401
from orchestrator.cli import why as cli_why  # noqa: E402, F401
from orchestrator.cli import artifacts as cli_artifacts  # noqa: E402, F401
from orchestrator.cli import backlog as cli_backlog  # noqa: E402, F401
from orchestrator.cli import wait as cli_wait  # noqa: E402, F401
from orchestrator.cli import build as cli_build  # noqa: E402, F401
from orchestrator.cli import console as cli_console  # noqa: E402

cli_console.register(app, NatsUrl, DEFAULT_URL, fail, console)


def main() -> None:
    """Console-script entry point: an unexpected error is one line unless --debug."""
    try:
        app()
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, the traceback on request
        if DEBUG["on"] or "--debug" in sys.argv or os.environ.get("NIYANTRA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(type(e).__name__)}: {escape(str(e))} (--debug shows the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()

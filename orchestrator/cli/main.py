"""The ``niyantra`` command line assembled: each command module registers its commands on the
typer app of `orchestrator.cli.app` when imported; `main` is the console-script entry point.

`main` imports only the module of the command it is given (`COMMANDS`), as click's lazily
loaded groups do: ``niyantra build`` never loads the modules of ``up``, ``query`` or
``replay``. ``niyantra --help``, an unknown name, and ``from orchestrator.cli.main import app``
(the tests' CliRunner) load every module, in the order of `COMMANDS`, which is the order of
``niyantra --help``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["COMMANDS", "load", "main"]  # and `app`, through __getattr__

# module of orchestrator.cli -> the commands and command groups it registers
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("instance", ("server", "up", "down", "autoscale", "projector", "decider")),
    ("agent", ("agent", "logs")),
    ("archive", ("query",)),
    ("graph", ("validate", "submit", "approve", "reject", "cancel")),
    ("ops", ("explain", "events", "metrics", "verify", "schema")),
    ("replay", ("replay", "whatif", "gantt")),
    ("sim", ("simulate",)),
    ("status", ("status", "snapshot", "watch")),
    ("views", ("views", "watchdog")),
    ("why", ("why", "pause", "resume")),
    ("artifacts", ("artifacts",)),
    ("backlog", ("backlog",)),
    ("wait", ("wait",)),
    ("build", ("build", "import")),
    ("console", ("console",)),
)
_loaded: set[str] = set()


def load(command: str | None = None) -> Any:
    """Register the module of ``command`` (every module when None or unknown); returns the app."""
    from orchestrator.cli.app import DEFAULT_URL, NatsUrl, app, console, fail

    wanted = [m for m, names in COMMANDS if command in names] or [m for m, _ in COMMANDS]
    for name in wanted:
        if name in _loaded:
            continue
        module = importlib.import_module(f"orchestrator.cli.{name}")
        if name == "console":
            module.register(app, NatsUrl, DEFAULT_URL, fail, console)
        _loaded.add(name)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command line, for CliRunner and embedding
        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command(argv: list[str]) -> str | None:
    """The command name in ``argv`` (the first word not an option), None when it asks for help first."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(resident: bool = True, prog_name: str | None = None) -> None:
    """Console-script entry point: an unexpected error is one line unless --debug. A command the
    resident server serves (`orchestrator.cli.resident`) runs there when it is up (``resident``:
    False in the server's own child, which names the program as its caller did, ``prog_name``)."""
    from orchestrator.cli import resident as served

    if resident and served.enabled(sys.argv[1:]):
        code = served.run_resident(sys.argv[1:])
        if code is not None:
            _leave(code)

    from rich.markup import escape

    from orchestrator.cli.app import DEBUG, err

    app = load(_command(sys.argv[1:]))
    try:
        app(prog_name=prog_name)
    except SystemExit as e:  # typer ends every command so
        _leave(e.code)
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, the traceback on request
        if DEBUG["on"] or "--debug" in sys.argv or os.environ.get("NIYANTRA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(type(e).__name__)}: {escape(str(e))} (--debug shows the traceback)")
        _leave(1)
    _leave(0)


def _leave(code: object) -> None:
    """End the process once the command is done: logs and output flushed, then ``os._exit``, not the
    interpreter's teardown of every module (~50 ms of each command; nothing of ours runs at exit:
    each command closes its connections and files itself)."""
    import logging

    status = code if isinstance(code, int) else (0 if code is None else 1)
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)  # sys.exit("message") prints it, as Python would
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (niyantra events | head): nothing more to say
            pass
    os._exit(status)


if __name__ == "__main__":
    main()

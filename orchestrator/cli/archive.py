"""`niyantra query`: DuckDB SQL over the Parquet archive, and how the read commands find that
archive (`find_archive`; registered on `orchestrator.cli.app.app`).

The folder: ``--archive-dir`` (``NIYANTRA_ARCHIVE_DIR``), else ``--data-dir`` (``NIYANTRA_DATA_DIR``)
``/archive``, else the one the instance at ``--nats-url`` published, else ``.niyantra/archive``
(projections/archive/location.py, docs/archive.md). A folder without archive files while the
stream holds events is one line on stderr naming the folder, exit 1; never an empty answer.
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, app, console, err, fail

if TYPE_CHECKING:
    from projections.archive.location import ArchiveChoice, Instance

# The archive's modules (DuckDB, Parquet) and nats are imported by the commands that use them, so
# that `niyantra` does not load them for every other command.

ArchiveDir = Annotated[
    Path | None,
    typer.Option(
        "--archive-dir", envvar="NIYANTRA_ARCHIVE_DIR", help="The archive folder (default: the instance's own)."
    ),
]
InstanceDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="NIYANTRA_DATA_DIR", help="The instance's data folder: read DIR/archive."),
]


async def _quiet(e: Exception) -> None:
    """nats-py reports connection errors here too; `find_archive` reports them once, itself."""


async def _ask(url: str) -> Instance | None:
    """What the instance at ``url`` says of its archive and stream; None when it does not answer."""
    import nats

    from orchestrator.runtime.connection import connect as nats_connect
    from projections.archive.location import ask_instance

    try:
        nc = await nats_connect(
            url, connect_timeout=3, max_reconnect_attempts=1, reconnect_time_wait=0.1, allow_reconnect=False,
            error_cb=_quiet,
        )  # fmt: skip
    except (OSError, nats.errors.Error):
        return None
    try:
        return await ask_instance(nc)
    except (OSError, nats.errors.Error):
        return None
    finally:
        await nc.close()


def _catch_up(choice: ArchiveChoice, head: int, deadline_s: float = 5.0) -> None:
    """Wait (bounded) until the instance's own archive holds the stream's head; else say how far it is."""
    from projections.archive.projector import archived_through

    stop = time.monotonic() + deadline_s
    while (through := archived_through(choice.directory)) < head and time.monotonic() < stop:
        time.sleep(0.1)
    if through < head:
        err.print(f"note: the archive {choice.directory} is through seq {through}; the stream is at {head}")


def find_archive(archive_dir: Path | None, data_dir: Path | None, url: str) -> ArchiveChoice:
    """The archive folder to read. When it is the instance's own, first wait (at most 5 s) for it to
    hold every event the stream held when asked, so a query right after a run sees the whole run.

    Raises (one line, the folder named) when the folder is on another host, or holds no archive
    files while the stream holds events or no instance answered; an empty folder beside an empty
    stream is an honest empty answer."""
    from projections.archive.location import HINT, choose_archive, has_files

    asked = asyncio.run(_ask(url))
    choice = choose_archive(archive_dir, data_dir, asked.location if asked else None, socket.gethostname())
    where = f"{choice.directory} ({choice.how})"
    if choice.elsewhere is not None:
        raise fail(f"the instance at {url} archives in {choice.directory} on host {choice.elsewhere}, not here; {HINT}")
    if asked is not None and asked.owns(choice.directory) and has_files(choice.directory):
        _catch_up(choice, asked.head)
    if has_files(choice.directory):
        return choice
    if asked is None:
        raise fail(f"no archive in {where}, and no instance answered at {url} to say where its archive is; {HINT}")
    if asked.head == 0:
        return choice
    why = HINT
    if asked.owns(choice.directory):
        why = "the archive projector writes within a second of an event; if this lasts, see its log (logs/ beside it)"
    raise fail(
        f"no archive in {where} while the stream at {url} holds events (through seq {asked.head}); {why}", code=1
    )


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the views events, tasks, decisions, nodes.")],
    *,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    archive_dir: ArchiveDir = None,
    data_dir: InstanceDir = None,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Run DuckDB SQL over the instance's event archive (works while the system runs)."""
    import duckdb
    from rich.table import Table

    from projections.archive.query import run_query

    if fmt not in ("table", "json", "csv"):
        raise fail(f"unknown --format {fmt!r}; choose table, json or csv")
    choice = find_archive(archive_dir, data_dir, nats_url)
    try:
        names, rows = run_query(choice.directory, sql)
    except duckdb.Error as e:
        raise fail(" ".join(str(e).split())) from e
    if fmt == "json":
        sys.stdout.write(json.dumps([dict(zip(names, map(_plain, r), strict=True)) for r in rows], indent=2) + "\n")
    elif fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(names)
        w.writerows([[json.dumps(_plain(v)) if isinstance(v, list | dict) else _plain(v) for v in r] for r in rows])
    else:
        table = Table(*names, show_lines=False)
        for r in rows:
            table.add_row(*(escape("" if v is None else str(_plain(v))) for v in r))
        console.print(table)
        console.print(f"{len(rows)} row(s)", style="dim")

"""`niyantra query`: DuckDB SQL over the Parquet archive (registered on `orchestrator.cli.main.app`)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.main import app, console, fail

ArchiveDir = Annotated[
    Path, typer.Option("--archive-dir", envvar="NIYANTRA_ARCHIVE_DIR", help="Where the archive projector writes.")
]
DEFAULT_ARCHIVE = Path(".niyantra/archive")


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
    archive_dir: ArchiveDir = DEFAULT_ARCHIVE,
) -> None:
    """Run DuckDB SQL over the event archive (works while the system runs)."""
    import duckdb

    from projections.archive.query import run_query

    if fmt not in ("table", "json", "csv"):
        raise fail(f"unknown --format {fmt!r}; choose table, json or csv")
    try:
        names, rows = run_query(archive_dir, sql)
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

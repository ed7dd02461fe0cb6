"""`niyantra artifacts list|get|gc`: the content-addressed artifact store."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, _connect, app, console, err, fail

artifacts_app = typer.Typer(help="Build artifacts in the store: list, fetch, collect garbage.", no_args_is_help=True)
app.add_typer(artifacts_app, name="artifacts")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
What = Annotated[
    str, typer.Argument(help="A digest (or a unique prefix of 8+ hex digits); with --task, an output path.")
]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: its name, here).")]
Days = Annotated[float, typer.Option("--days", help="Keep blobs a completion of the last N days refers to.")]


def _run(make: Any) -> Any:
    """Connect, run one library call, close; an artifact error is one line and exit code 2."""
    from node_agent.artifacts.errors import ArtifactError

    async def go(url: str) -> Any:
        nc = await _connect(url)
        try:
            return await make(nc)
        finally:
            await nc.close()

    def call(url: str) -> Any:
        try:
            return asyncio.run(go(url))
        except ArtifactError as e:
            raise fail(str(e)) from e

    return call


def _size(n: int | None) -> str:
    if n is None:
        return "missing"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _ref(x: Any) -> dict[str, str]:
    return {"graph": x.graph_id, "task": x.task_id, "path": x.path, "at": x.at.isoformat()}


@artifacts_app.command("list")
def list_(*, as_json: JsonOpt = False, nats_url: NatsUrl = DEFAULT_URL) -> None:
    """Every blob with its size and the task outputs that refer to it (and referenced blobs that are missing)."""
    from node_agent.artifacts.operate import list_artifacts

    rows = _run(list_artifacts)(nats_url)
    if as_json:
        doc = [
            {
                "digest": r.digest,
                "size": r.size,
                "stored_at": r.stored_at.isoformat() if r.stored_at else None,
                "intact": r.intact,
                "refs": [
                    {"graph": x.graph_id, "task": x.task_id, "path": x.path, "at": x.at.isoformat()} for x in r.refs
                ],
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    table = Table("digest", "size", "stored", "referred to by")
    for r in rows:
        who = ", ".join(f"{x.graph_id}/{x.task_id}:{x.path}" for x in r.refs[:3]) + (
            f" (+{len(r.refs) - 3})" if len(r.refs) > 3 else ""
        )
        state = "" if r.intact else (" [red](corrupt)[/red]" if r.size is not None else " [red](missing)[/red]")
        stored = r.stored_at.strftime("%Y-%m-%d %H:%M") if r.stored_at else "-"
        table.add_row(r.digest[:16] + state, _size(r.size), stored, escape(who) or "[dim]nothing[/dim]")
    console.print(table)
    total = sum(r.size or 0 for r in rows)
    console.print(f"{sum(r.size is not None for r in rows)} blob(s), {_size(total)}", style="dim")


@artifacts_app.command()
def get(
    what: Annotated[
        str,
        typer.Argument(help="A blob's digest (or a unique prefix of 8+ hex digits), or with --task an output path."),
    ],
    *,
    graph: Annotated[str | None, typer.Option("--graph", help="Graph of the task (with --task).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Fetch this task's recorded output WHAT.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: its name here).")
    ] = None,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Fetch a blob, or a task's output by graph, task and path, into a file (verified, whole or not at all)."""
    from node_agent.artifacts.operate import get_blob, get_output

    if task is not None and graph is None:
        raise fail("--task needs --graph (task ids are unique within a graph)")
    if graph is not None and task is None:
        raise fail("--graph needs --task and an output path")
    dest = output or Path(PurePosixPath(what).name if task else what)
    if dest.is_dir():
        dest = dest / (PurePosixPath(what).name if task else what)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if task is not None and graph is not None:
        record = _run(lambda nc: get_output(nc, graph, task, what, dest))(nats_url)
        err.print(f"[dim]{graph}/{task}:{record.path} sha256:{record.digest[:16]} → {dest}[/dim]", highlight=False)
    else:
        size = _run(lambda nc: get_blob(nc, what, dest))(nats_url)
        err.print(f"[dim]{_size(size)} → {dest}[/dim]", highlight=False)


@artifacts_app.command()
def gc(
    *,
    days: Annotated[
        float, typer.Option("--days", help="Keep blobs any completion of the last N days refers to.")
    ] = 30.0,
    grace: Annotated[float, typer.Option("--grace-minutes", help="Never remove a blob stored this recently.")] = 60.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
    as_json: JsonOpt = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Remove blobs no completion of the last N days refers to and no unfinished task needs."""
    from node_agent.artifacts.operate import collect_garbage

    if days < 0 or grace < 0:
        raise fail("--days and --grace-minutes must not be negative")
    now = datetime.now(UTC)
    report = _run(
        lambda nc: collect_garbage(
            nc, now=now, keep_for=timedelta(days=days), min_age=timedelta(minutes=grace), dry_run=dry_run
        )
    )(nats_url)
    gone = report.plan.remove if dry_run else report.removed
    if as_json:
        doc = {
            "dry_run": dry_run,
            "removed": list(gone),
            "bytes_freed": report.plan.bytes_freed,
            "kept": [{"digest": d, "reason": why} for d, why in report.plan.keep],
            "orphan_chunks_purged": list(report.orphans_purged),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {len(gone)} blob(s), {_size(report.plan.bytes_freed)}; kept {len(report.plan.keep)};"
        f" orphan chunk sets purged: {len(report.orphans_purged)}",
        highlight=False,
    )

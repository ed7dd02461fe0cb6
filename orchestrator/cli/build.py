"""`niyantra import ninja` and `niyantra build`: a Ninja build in as a graph (on `orchestrator.cli.app.app`).

``import ninja build.ninja [-o graph.toml]`` writes the graph file and submits nothing (the same
file submitted twice is accepted once, as any graph file). ``build BUILD_DIR`` imports the folder's
build.ninja and submits it as a new run, like calling ``ninja`` again: its graph id is the project's
name and the next run number (``zlib-3``), then it watches the run as ``niyantra wait`` does.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.app import DEFAULT_URL, LazyLive, NatsUrl, _quiet, app, console, fail
from orchestrator.cli.graph import _print_problems, _submission, _with_app, store_source_on
from orchestrator.errors import GraphFileError, NinjaFileError, SourceTreeError

import_app = typer.Typer(help="Turn another build system's files into a niyantra graph file.", no_args_is_help=True)
app.add_typer(import_app, name="import")

Targets = Annotated[
    list[str] | None, typer.Option("--target", "-t", help="Build these targets (default: the file's defaults).")
]
Source = Annotated[Path | None, typer.Option("--source", help="The source folder (default: CMake's, or found).")]


def _import(manifest: Path, source: Path | None, targets: list[str] | None, graph_id: str | None = None) -> Any:
    from orchestrator.graphs.ninja.load import import_ninja

    try:
        return import_ninja(manifest, source=source, targets=tuple(targets or ()), graph_id=graph_id)
    except (NinjaFileError, SourceTreeError) as e:
        raise fail(str(e)) from e


@import_app.command("ninja")
def import_ninja_cmd(
    manifest: Annotated[Path, typer.Argument(help="The build.ninja (in the build folder CMake or Meson made).")],
    *,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Graph file (.toml or .json).")] = None,
    target: Targets = None,
    source: Source = None,
    graph_id: Annotated[str | None, typer.Option("--graph-id", help="Graph id (default: the project's name).")] = None,
) -> None:
    """Write the graph of a Ninja build (one task per build edge) without submitting it."""
    from orchestrator.graphs.graphfile import build_with_source
    from orchestrator.graphs.graphwrite import to_toml, write_document

    found = _import(manifest, source, target, graph_id)
    try:  # the same checks `niyantra validate` makes, before anything is written
        spec = build_with_source(str(manifest), found.document, Path.cwd())
    except GraphFileError as e:
        _print_problems(e)
        raise typer.Exit(2) from e
    if output is None:
        sys.stdout.write(to_toml(found.document))
        return
    write_document(found.document, output)
    console.print(f"wrote {output}: graph {spec.id!r}, {len(spec.tasks)} tasks from {manifest}", highlight=False)


def next_run_id(project: str, existing: list[str]) -> str:
    """``project-N`` with N one more than the highest run of ``project`` among ``existing`` graph ids."""
    runs = re.compile(re.escape(project) + r"-(\d+)$")
    numbers = [int(m.group(1)) for g in existing if (m := runs.match(g))]
    return f"{project}-{max(numbers, default=0) + 1}"


@app.command()
def build(
    build_dir: Annotated[Path, typer.Argument(help="The build folder holding build.ninja.")],
    *,
    target: Targets = None,
    source: Source = None,
    wait: Annotated[bool, typer.Option(help="Watch the run until it ends (exit 1 if a task failed).")] = True,
    timeout: Annotated[float, typer.Option(help="Give up watching after this many seconds.")] = 3600.0,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Import BUILD_DIR/build.ninja and submit it as a new run (graph PROJECT-N); watch it to its end."""
    manifest = build_dir / "build.ninja"
    found = _import(manifest, source, target)
    graph, report = asyncio.run(_run(nats_url, manifest, found, wait, timeout))
    failed = [t["id"] for t in report.tasks if t["state"] != "succeeded"] if report else []
    if failed:
        console.print(f"graph {graph}: {len(failed)} task(s) did not succeed: {', '.join(failed[:10])}")
        raise typer.Exit(1)


async def _run(url: str, manifest: Path, found: Any, wait: bool, timeout: float) -> tuple[str, Any]:
    """Every step after the import on one connection: the run's id from the graphs there, the
    source stored, the graph submitted, the run watched (its id and report; no report without ``wait``)."""
    from orchestrator.graphs.graphfile import build_with_source
    from orchestrator.runtime.connection import connect

    try:
        nc = await connect(  # once, and quietly: an unreachable server is one line, not a retry loop
            url, allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=5, error_cb=_quiet, name="build"
        )
    except Exception as e:  # noqa: BLE001 -- any failure to reach the server is one line
        raise fail(f"cannot reach {url}: {e or type(e).__name__}") from e
    try:
        gid = next_run_id(found.project, await _existing_graphs(nc, url))
        document = {**found.document, "graph": {**found.document["graph"], "id": gid}}
        spec, events = _submission(
            "build", lambda: build_with_source(str(manifest), document, Path.cwd(), hash_source=True)
        )
        await store_source_on(nc, url, spec)
        done = _with_app(url, lambda a: a.submit_graph(events))
        console.print(f"submitted graph {spec.id}: {len(spec.tasks)} tasks from {manifest} (seq {done.seq})")
        return spec.id, (await _watch(nc, spec.id, timeout) if wait else None)
    finally:
        await nc.close()


async def _existing_graphs(nc: Any, url: str) -> list[str]:
    from orchestrator.reports.queries import graph_ids_on

    try:
        return await graph_ids_on(nc)
    except Exception as e:  # noqa: BLE001 -- any failure to read them is one line
        raise fail(f"cannot read the graphs at {url}: {e or type(e).__name__}") from e


async def _watch(nc: Any, graph: str, timeout: float) -> Any:
    from orchestrator.cli.wait import _render, wait_on

    show = LazyLive(_render)
    try:
        return await wait_on(nc, graph, timeout, show)
    except TimeoutError:
        raise fail(f"graph {graph} not done after {timeout}s", code=1) from None
    finally:
        show.stop()


__all__ = ["build", "import_ninja_cmd", "next_run_id"]

"""`niyantra` commands about views: the watchdog process and ``views rebuild [--verify]``.

Registered on the app of `orchestrator.cli.app` when `orchestrator.cli.main` imports it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, ReadyFile, _connect, app, console, fail
from orchestrator.errors import OrchestratorError

views_app = typer.Typer(help="Read models: rebuild and verify.", no_args_is_help=True)
app.add_typer(views_app, name="views")


def view_params(name: str, pairs: list[str]) -> dict[str, float]:
    """Parse ``K=V`` parameters of a projection, naming what is wrong."""
    from projections.runner import PROJECTIONS

    known = PROJECTIONS[name].params
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise fail(f"bad --param {pair!r} for projector {name}: use K=V with K one of: {choices}")
        try:
            out[key] = float(value)
        except ValueError as e:
            raise fail(f"bad --param {pair!r}: {value!r} is not a number") from e
    return out


@app.command()
def watchdog(
    *,
    nats_url: NatsUrl = DEFAULT_URL,
    ready_file: ReadyFile = None,
    missed: Annotated[int, typer.Option(help="Observations a node may miss before it is lost.")] = 3,
    observe_interval: Annotated[
        float, typer.Option(help="Seconds between observations, for nodes that do not announce theirs.")
    ] = 5.0,
    tick: Annotated[float, typer.Option(help="Seconds between rounds.")] = 1.0,
    watchdog_id: Annotated[str, typer.Option(envvar="NIYANTRA_WATCHDOG_ID", help="Name in logs.")] = "watchdog",
) -> None:
    """Run the watchdog: append NodeLost, TaskLost and PredictionExpired when their time comes."""
    from orchestrator.processes.shell import ready_marker, run_until_signalled, setup_logging
    from orchestrator.processes.watchdog import WatchdogConfig, run_watchdog

    if missed < 1 or observe_interval <= 0 or tick <= 0:
        raise fail("watchdog: --missed must be ≥ 1, --observe-interval and --tick > 0")
    setup_logging(watchdog_id)
    config = WatchdogConfig(observe_interval_s=observe_interval, missed=missed, watchdog_id=watchdog_id, tick_s=tick)

    async def main(stop: asyncio.Event) -> None:
        await run_watchdog(nats_url, stop, config, on_ready=ready_marker(ready_file))

    run_until_signalled(main)


@views_app.command("rebuild")
def views_rebuild(
    *,
    verify: Annotated[
        bool, typer.Option("--verify", help="Compare with the live views; exit 1 on any difference.")
    ] = False,
    view: Annotated[list[str] | None, typer.Option("--view", help="Only this view; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Rebuild every view from sequence 1 (in memory); with --verify, compare with the live KV views."""
    from projections.rebuild.build import rebuild
    from projections.rebuild.verify import verify as verify_views
    from projections.runner import PROJECTIONS

    names = view or list(PROJECTIONS)
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise fail(f"unknown view {', '.join(unknown)}; choose from {', '.join(PROJECTIONS)}")

    problems: list[str] = []

    async def go() -> dict[str, object]:
        nc = await _connect(nats_url)
        try:
            rb = await rebuild(nc, names)
            report: dict[str, object] = {
                "seq": rb.seq,
                "events": rb.events,
                "seconds": round(rb.seconds, 3),
                "events_per_s": round(rb.events / rb.seconds) if rb.seconds else None,
                "views": {
                    n: {"keys": len(rb.folds[n].snapshot()), "dead_letters": len(rb.folds[n].dead)} for n in names
                },
            }
            if verify:
                verdicts = await verify_views(nc, names)
                report["verify"] = {v.name: {"seq": v.seq, "keys": v.keys, "problems": v.problems} for v in verdicts}
                problems.extend(p for v in verdicts for p in v.problems)
            return report
        finally:
            await nc.close()

    try:
        report = asyncio.run(go())
    except (OrchestratorError, TimeoutError) as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_rebuild(report)
    if problems:
        raise typer.Exit(1)


def _print_rebuild(report: dict) -> None:  # type: ignore[type-arg]
    console.print(
        f"rebuilt {', '.join(report['views'])} from {report['events']} events (seq {report['seq']}) "
        f"in {report['seconds']}s ({report['events_per_s'] or '-'} events/s)"
    )
    for name, v in report["views"].items():
        console.print(f"  {name}: {v['keys']} keys, {v['dead_letters']} dead letters")
    for name, v in (report.get("verify") or {}).items():
        if v["problems"]:
            console.print(f"[red]{name}: DIFFERS[/red] from the live view at seq {v['seq']}:")
            for p in v["problems"]:
                console.print(f"  {escape(p)}", highlight=False)
        else:
            console.print(f"[green]{name}: identical[/green] to the live view at seq {v['seq']} ({v['keys']} keys)")

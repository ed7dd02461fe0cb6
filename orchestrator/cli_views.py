"""`niyantra` commands about views: the watchdog process and ``views rebuild [--verify]``.

Registered on the app of `orchestrator.cli` when that module imports this one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from orchestrator.cli import DEFAULT_URL, NatsUrl, ReadyFile, app, fail

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
    from orchestrator.process import ready_marker, run_until_signalled, setup_logging
    from orchestrator.watchdog import WatchdogConfig, run_watchdog

    if missed < 1 or observe_interval <= 0 or tick <= 0:
        raise fail("watchdog: --missed must be ≥ 1, --observe-interval and --tick > 0")
    setup_logging(watchdog_id)
    config = WatchdogConfig(observe_interval_s=observe_interval, missed=missed, watchdog_id=watchdog_id, tick_s=tick)

    async def main(stop: asyncio.Event) -> None:
        await run_watchdog(nats_url, stop, config, on_ready=ready_marker(ready_file))

    run_until_signalled(main)

"""`niyantra replay`: re-run recorded decisions, or show the world at a sequence (on `orchestrator.cli.app.app`)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.app import (
    DEFAULT_URL,
    NatsUrl,
    _connect,
    app,
    console,
    err,
    fail,
)
from orchestrator.cli.instance import load_decider_config
from orchestrator.cli.status import render_status, totals_line
from schemas import subjects as S


async def read_messages(url: str, until: int | None = None) -> list[Any]:
    """Every stored message of the event stream in order (up to ``until``), read in bulk
    (`projections.logread`); a read that stalls is a one-line error, never a silent short log."""
    from orchestrator.writeside.eventlog import StoredMessage
    from projections.errors import ProjectionError
    from projections.logread import read_chunks

    nc = await _connect(url)
    out: list[Any] = []
    try:
        head = (await nc.jetstream().stream_info(S.STREAM)).state.last_seq
        last = min(head, until) if until is not None else head
        with err.status(f"reading the log: 0 of {last} events") as progress:  # on stderr; quiet when not a TTY
            async for chunk in read_chunks(nc, 1, last):
                out += [StoredMessage(seq=seq, subject=subject, headers={}, data=data) for seq, subject, data in chunk]
                progress.update(f"reading the log: {chunk[-1][0]} of {last} events")
    except ProjectionError as e:
        raise fail(str(e)) from e
    finally:
        await nc.close()
    return out


@app.command()
def replay(
    *,
    check: Annotated[bool, typer.Option("--check", help="Re-run every recorded decision and compare.")] = False,
    at: Annotated[int | None, typer.Option("--at", help="Show the world as it was at this sequence.")] = None,
    graph: Annotated[str | None, typer.Option("--graph", help="Only this graph.")] = None,
    until: Annotated[int | None, typer.Option("--until", help="Stop at this sequence.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            min=1,
            help="Processes for --check: contiguous ranges of decisions, each folding the log from 1 "
            "(worth it on idle cores and long logs; at least 1,000 decisions a process).",
        ),
    ] = 1,
    config_file: Annotated[
        str | None,
        typer.Option(
            "--config", envvar="NIYANTRA_DECIDER_CONFIG", help="The decider's [decider] config file (its thresholds)."
        ),
    ] = None,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Replay the log: --check re-runs decide at each decision with its recorded inputs; --at SEQ shows the world."""
    if check == (at is not None):
        raise fail("use exactly one of --check or --at SEQ")
    messages = asyncio.run(read_messages(nats_url, at if at is not None else until))
    if at is not None:
        _world_at(messages, at, graph, as_json)
        return
    from orchestrator.replay.check import check as run_check

    base = load_decider_config(config_file) if config_file else None
    report = run_check(messages, until=until, graph=graph, jobs=jobs, base=base)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        console.print(f"{report['reproduced']} of {report['decisions']} decisions reproduced exactly")
        for m in report["mismatches"]:
            console.print(f"[red]seq {m['seq']}[/red] {m['graph']}/{m['task']} attempt {m['attempt']}:")
            for d in m["differences"]:
                console.print(f"  {d['field']}: recorded {escape(str(d['recorded']))}", highlight=False)
                console.print(f"  {' ' * len(d['field'])}  replayed {escape(str(d['replayed']))}", highlight=False)
    if report["mismatches"]:
        raise typer.Exit(1)


def _world_at(messages: list[Any], at: int, graph: str | None, as_json: bool) -> None:
    from orchestrator.replay.replayer import Replayer
    from orchestrator.reports.queries import build_status

    fold = Replayer(messages).at("readiness", at)
    values: dict[str, Any] = {f"task.{g}.{t}": v for (g, t), v in fold.view.tasks.items()}
    values.update({f"graph.{g}": v for g, v in fold.view.graphs.items()})
    report = build_status(values, fold.seq, graph)
    if as_json:
        import msgspec

        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        return
    console.print(render_status(report))
    for g in report.graphs:
        console.print(totals_line(g))


@app.command()
def whatif(
    *,
    config: Annotated[
        str, typer.Option("--config", help="TOML file with a [decider] table (policy, aging_per_s, ...).")
    ],
    graph: Annotated[str | None, typer.Option("--graph", help="Graph to re-play (default: the only one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Counterfactual: the recorded run re-played on the simulator with another decider config."""
    import tomllib
    from pathlib import Path

    from orchestrator.replay.whatif import scoring_config
    from orchestrator.replay.whatif import whatif as run

    try:
        table = tomllib.loads(Path(config).read_text()).get("decider", {})
        alternative = scoring_config(table, config)
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as e:
        raise fail(f"{config}: {e}") from e
    messages = asyncio.run(read_messages(nats_url))
    if graph is None:
        graphs = sorted({S.id_of_token(m.subject, 2) for m in messages if m.subject.endswith(".GraphSubmitted")})
        if len(graphs) != 1:
            raise fail(f"the log has graphs {', '.join(graphs) or 'none'}; name one with --graph")
        graph = graphs[0]
    try:
        report = run(messages, graph, alternative)
    except ValueError as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    rec = report["recorded_makespan_s"]
    console.print(f"graph {graph}: recorded makespan {rec:.1f}s (policy {report['recorded_policy']})" if rec else "")
    console.print(
        f"  simulated with the recorded policy: {report['simulated_baseline_makespan_s']:.1f}s\n"
        f"  simulated with {config}: {report['simulated_alternative_makespan_s']:.1f}s\n"
        f"  {len(report['changed_decisions'])} decision(s) change",
        highlight=False,
    )
    for c in report["changed_decisions"][:20]:
        console.print(f"    {c['task']}: {c['baseline']} -> {c['alternative']}", highlight=False)


@app.command()
def gantt(
    graph: Annotated[str, typer.Argument(help="Graph id.")],
    *,
    out: Annotated[str, typer.Option("--out", help="Output file: .svg or .html.")],
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """A picture of a run: one lane per node, a bar per attempt, failures, retries and the critical path."""
    from pathlib import Path

    from orchestrator.reports.gantt import gantt_html, gantt_svg
    from schemas import codec
    from schemas.errors import MalformedEvent

    path = Path(out)
    if path.suffix not in (".svg", ".html"):
        raise fail(f"--out {out}: use a .svg or .html file")
    events = []
    for m in asyncio.run(read_messages(nats_url)):
        try:
            events.append((m.seq, codec.decode(m.data, subject=m.subject, seq=m.seq)))
        except MalformedEvent:
            continue
    try:
        svg = gantt_svg(events, graph)
    except ValueError as e:
        raise fail(str(e)) from e
    path.write_text(gantt_html(svg, graph) if path.suffix == ".html" else svg)
    console.print(f"wrote {path}")

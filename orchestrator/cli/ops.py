"""`niyantra explain`, `events`, `metrics`, `verify` and `schema`: the operator's questions, answered
from the log, and the events' JSON Schema."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.app import DEFAULT_URL, NatsUrl, _connect, app, console, fail
from orchestrator.cli.archive import ArchiveDir, InstanceDir, find_archive
from schemas import subjects as S
from schemas.ids import token

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


async def _task_events(url: str, ref: str, graph: str | None) -> tuple[tuple[str, str], list[tuple[int, Any]]]:
    """The task ``ref`` names (see orchestrator.cli.taskref) and its events in log order."""
    from orchestrator.cli.taskref import readings, resolve
    from orchestrator.reports.explain import generated_by
    from orchestrator.writeside.eventlog import EventLog

    nc = await _connect(url)
    try:
        log = EventLog(nc)
        await log.ensure_stream()  # a fresh server has no stream yet: then there are no events
        by_task: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for g, t in readings(ref, graph):
            gtok = "*" if g is None else token(g)
            events = await log.read_events(f"{S.ROOT}.task.{gtok}.{token(t)}.>")
            generated = generated_by(await log.read_events(f"{S.ROOT}.graph.{gtok}.TasksGenerated"), t)
            for seq, e in events + generated:
                by_task.setdefault((e.graph_id, t), []).append((seq, e))
        key = resolve(ref, graph, lambda g, t: [k for k in by_task if k[1] == t and g in (None, k[0])])
        return key, sorted(by_task[key], key=lambda p: p[0])
    finally:
        await nc.close()


@app.command()
def explain(
    task: Annotated[str, typer.Argument(help="TASK or GRAPH/TASK.")],
    *,
    graph: Annotated[str | None, typer.Option("--graph", help="Graph of the task.")] = None,
    as_json: JsonOpt = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Every decision about a task in order: candidates with score and reason, the node chosen, why."""
    from orchestrator.reports.explain import explain as explain_events

    try:
        (gid, task), events = asyncio.run(_task_events(nats_url, task, graph))
    except LookupError as e:
        if "could be" in str(e):
            raise fail(str(e)) from e
        where = f" in graph {graph!r}" if graph else ""
        raise fail(f"no events for task {task!r}{where} (not dispatched yet?)") from e
    graphs = [gid]
    report = {"graph": gid, "task": task, **explain_events(events)}
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    console.print(f"[bold]{graphs[0]}/{task}[/bold]: {len(report['decisions'])} decision(s)")
    for g in report.get("generated", []):
        console.print(
            f"[magenta]generated[/magenta] at seq {g['seq']} by rule {g['rule']} after {g['trigger']} ended"
            f" {g['trigger_outcome']} (seq {g['trigger_seq']}): {escape(g['reason'])}",
            highlight=False,
        )
    for d in report["decisions"]:
        views = ", ".join(f"{k}@{v}" for k, v in d["view_seqs"].items()) or "-"
        if d.get("kind") == "cache hit":
            console.print(f"\n[bold]seq {d['seq']}[/bold] {d['at']}: [green]cache hit[/green] {escape(d['reason'])}")
            console.print(
                f"  key {d['key']}, decider {d['decider']} v{d['decider_version']}, views {views}", style="dim"
            )
            continue
        if d.get("cache_miss"):
            console.print(f"\n  cache miss: {escape(d['cache_miss'])} (key {d['action_key'][:12]})", highlight=False)
        what = "preflight" if d["phase"] == "preflight" else f"attempt {d['attempt']}"
        console.print(
            f"\n[bold]seq {d['seq']}[/bold] {d['at']}: {what} → [cyan]{d['node']}[/cyan]"
            f" (policy {d['policy']}{', strategy ' + d['strategy'] if d['strategy'] else ''},"
            f" confidence {d['confidence']:.2f}, autonomy {d['autonomy']})",
            highlight=False,
        )
        console.print(
            f"  decider {d['decider']} v{d['decider_version']}, world {d['world_hash']}, views {views}", style="dim"
        )
        table = Table("", "node", "score", "reason", box=None, padding=(0, 1))
        for c in sorted(d["candidates"], key=lambda c: (not c["selected"], not c["eligible"], -c["score"])):
            mark = "[green]✓[/green]" if c["selected"] else ("·" if c["eligible"] else "[red]✗[/red]")
            table.add_row(mark, c["node"], f"{c['score']:.4f}", escape(c["reason"]))
        console.print(table)
    console.print("\n[bold]timeline[/bold]")
    for t in report["timeline"]:
        console.print(f"  {t['seq']:>7}  {t['at'][11:23]}  {t['type']:<16} {escape(t['what'])}", highlight=False)


def _matches(e: Any, node: str | None, types: set[str]) -> bool:
    if types and type(e).__name__ not in types:
        return False
    return node is None or getattr(e, "node_id", None) == node


def _line(seq: int, e: Any) -> str:
    from orchestrator.reports.explain import subject_of, summary

    return f"{seq:>7}  {e.occurred_at.isoformat()[11:23]}  {type(e).__name__:<16} {subject_of(e):<24} {summary(e)}"


@app.command()
def events(
    *,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    task: Annotated[str | None, typer.Option("--task", help="Only this task (TASK or GRAPH/TASK).")] = None,
    node: Annotated[str | None, typer.Option("--node", help="Only events about this node.")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only this event type; repeatable.")] = None,
    graph: Annotated[str | None, typer.Option("--graph", help="Only this graph.")] = None,
    last: Annotated[int, typer.Option("--last", help="How many past events to show first.")] = 50,
    as_json: JsonOpt = False,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """Tail the event stream, filtered by task, node, graph or type."""
    if task:
        try:
            (graph, task), _ = asyncio.run(_task_events(nats_url, task, graph))
        except LookupError as e:
            raise fail(str(e)) from e
    subject = f"{S.ROOT}.>"
    if task or graph:
        subject = f"{S.ROOT}.task.{token(graph) if graph else '*'}.{token(task) if task else '*'}.>"
    types = set(type_ or [])
    asyncio.run(_tail(nats_url, subject, node, types, last, follow, as_json))


async def _tail(
    url: str, subject: str, node: str | None, types: set[str], last: int, follow: bool, as_json: bool
) -> None:
    """Print the last ``last`` matching events, then (``follow``) every new one as it arrives."""
    from collections import deque

    import nats.errors

    from orchestrator.runtime.ordered import subscribe_ordered

    nc = await _connect(url)
    try:
        js = nc.jetstream()
        head = (await js.stream_info(S.STREAM)).state.last_seq
        narrow = subject != f"{S.ROOT}.>" or node or types
        start = 1 if narrow else max(1, head - max(last, 0) + 1)
        sub = await subscribe_ordered(nc, subject, stream=S.STREAM, start_seq=start)
        backlog: deque[str] = deque(maxlen=max(last, 0))
        caught_up = head == 0
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                if not caught_up:
                    caught_up = True
                    _print_all(backlog)
                if not follow:
                    break
                continue
            seq = msg.metadata.sequence.stream
            line = _render(seq, msg, node, types, as_json)
            if caught_up:
                if line is not None:
                    print(line, flush=True)
                continue
            if line is not None:
                backlog.append(line)
            if seq >= head:
                caught_up = True
                _print_all(backlog)
                if not follow:
                    break
        await sub.unsubscribe()
    finally:
        await nc.close()


def _print_all(lines: Any) -> None:
    for line in lines:
        print(line, flush=True)


def _render(seq: int, msg: Any, node: str | None, types: set[str], as_json: bool) -> str | None:
    from schemas import codec
    from schemas.errors import MalformedEvent

    try:
        e = codec.decode(msg.data, subject=msg.subject, seq=seq)
    except MalformedEvent as err:
        return json.dumps({"seq": seq, "malformed": str(err)}) if as_json else f"{seq:>7}  malformed: {err}"
    if not _matches(e, node, types):
        return None
    return json.dumps({"seq": seq, "event": json.loads(codec.encode(e))}) if as_json else _line(seq, e)


@app.command()
def metrics(
    *,
    as_json: JsonOpt = False,
    archive_dir: ArchiveDir = None,
    data_dir: InstanceDir = None,
    nats_url: NatsUrl = DEFAULT_URL,
) -> None:
    """The article's "Real Numbers" table, computed from the instance's event archive.

    A figure with nothing to compute it from yet (no retries, no decisions) is "—" in the table
    and absent from --json, never a zero or a null."""
    from orchestrator.reports.metrics import compute_metrics
    from projections.archive.query import run_query
    from schemas import codec
    from schemas.errors import MalformedEvent

    choice = find_archive(archive_dir, data_dir, nats_url)
    sql = "SELECT seq, stored_at, json FROM events WHERE type <> '_malformed' ORDER BY seq"
    _, rows = run_query(choice.directory, sql)
    if not rows:  # an empty stream too (find_archive refuses an empty archive beside a full stream)
        if as_json:
            sys.stdout.write("{}\n")
        else:
            console.print(f"no data yet: no events in the archive {choice.directory} ({choice.how})")
        return

    def decoded() -> Any:
        for seq, stored_at, text in rows:
            try:
                yield seq, stored_at, codec.decode(cast(str, text).encode(), seq=cast(int, seq))
            except MalformedEvent:
                continue

    result = compute_metrics(decoded())
    if as_json:
        sys.stdout.write(json.dumps({k: v for k, v in result.items() if v is not None}, indent=2) + "\n")
        return
    if not result.get("graphs_submitted"):
        console.print(f"no data yet: no graph submitted (archive {choice.directory}, through seq {rows[-1][0]})")
        return
    table = Table("metric", "value", title="niyantra metrics")
    for k, v in result.items():
        table.add_row(k.replace("_", " "), "—" if v is None else str(v))
    console.print(table)
    console.print(f"from the archive {choice.directory} ({choice.how}), through seq {rows[-1][0]}", soft_wrap=True)


async def _all_events(url: str) -> tuple[list[tuple[int, Any]], int]:
    """Every decodable event in order, and how many malformed ones were skipped."""
    from orchestrator.cli.replay import read_messages
    from schemas import codec
    from schemas.errors import MalformedEvent

    out: list[tuple[int, Any]] = []
    malformed = 0
    for m in await read_messages(url):
        try:
            out.append((m.seq, codec.decode(m.data, subject=m.subject, seq=m.seq)))
        except MalformedEvent:
            malformed += 1
    return out, malformed


@app.command()
def verify(*, as_json: JsonOpt = False, nats_url: NatsUrl = DEFAULT_URL) -> None:
    """Check the invariants over the whole log; exit 1 on any violation."""
    from orchestrator.replay.verify import verify as check

    events_, malformed = asyncio.run(_all_events(nats_url))
    report = {**check(events_), "malformed_skipped": malformed}
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for k, c in report["checked"].items():
            bad = sum(1 for v in report["violations"] if v["invariant"] == k)
            mark = "[green]ok[/green]" if not bad else f"[red]{bad} violation(s)[/red]"
            console.print(f"{k} {c['rule']}: {c['checks']} checks, {mark}")
        for v in report["violations"]:
            where = f"seq {v['seq']} " if v["seq"] else ""
            console.print(f"  [red]{v['invariant']}[/red] {where}{v['graph']}/{v['task']}: {escape(v['message'])}")
        console.print(f"{report['events']} events checked, {malformed} malformed skipped")
    if report["violations"]:
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the JSON Schema of every event, generated by msgspec."""
    from schemas.codec import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")

"""The console's pages of runs, a graph, the nodes and the trust panel, as HTML (pure).

Each page is a function of plain data the shell gathers (view values, a graph's events); the
task page is in `taskpage`. ``fragment=True`` gives only the part that live pages replace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.console.dag import Node, dag_svg
from orchestrator.console.html import esc, frame, graph_href, state_tag, table, task_href
from orchestrator.reports.gantt import bars_of, gantt_svg, mark_critical


def _out(title: str, body: str, fragment: bool) -> str:
    return body if fragment else frame(title, body)


def progress(done: int, total: int) -> str:
    """A progress bar and its figures."""
    pct = 100 * done / total if total else 0
    return f'<span class="bar"><i style="width:{pct:.0f}%"></i></span> {done}/{total}'


def runs_page(graphs: Sequence[Mapping[str, Any]], fragment: bool = False) -> str:
    """Every graph with its totals and progress (`queries.graph_row` dicts)."""
    rows = []
    for g in graphs:
        counts = g["counts"]
        ended = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
        rows.append(
            [
                f'<a class="graph" href="{esc(graph_href(g["id"]))}">{esc(g["id"])}</a>',
                esc(g["title"]),
                progress(ended, g["total"]),
                " ".join(f"{state_tag(s)} {n}" for s, n in counts.items() if n),
                "done" if g["done"] else "running",
            ]
        )
    body = table(["graph", "title", "progress", "tasks by state", ""], rows, "runs") if rows else "<p>no graphs yet</p>"
    return _out("runs", body, fragment)


def graph_page(graph: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], events: Iterable[tuple[int, Any]],
               fragment: bool = False) -> str:  # fmt: skip
    """A graph: totals, its DAG coloured by state with the realised critical path, the Gantt per node, its tasks."""
    events = list(events)
    bars, deps = bars_of(events, graph["id"])
    critical = mark_critical(bars, deps) if bars else []
    nodes = [Node(t["id"], t["state"], tuple(t["depends_on"])) for t in tasks]
    hrefs = {t["id"]: task_href(graph["id"], t["id"]) for t in tasks}
    rows = [
        [
            f'<a class="task" href="{esc(hrefs[t["id"]])}">{esc(t["id"])}</a>',
            state_tag(t["state"]),
            esc(t["node"]),
            esc(t["attempt"]),
            esc(", ".join(t["waiting_for"])),
            esc(t["reason"]),
        ]
        for t in tasks
    ]
    crit = " → ".join(esc(c) for c in critical) or "<span class=muted>none yet</span>"
    ended = sum(1 for t in tasks if t["state"] in ("succeeded", "failed", "cancelled"))
    gantt = gantt_svg(events, graph["id"]) if bars else "<p class=muted>nothing ran yet</p>"
    listing = table(["task", "state", "node", "attempt", "waiting for", "reason"], rows, "tasks")
    body = (
        f"<p>{esc(graph['title'])} · {progress(ended, len(tasks))}"
        f" · critical path: {crit}</p><section>{dag_svg(nodes, critical, hrefs)}</section>"
        f"<section><h3>on the nodes</h3>{gantt}</section>"
        f"<section><h3>tasks</h3>{listing}</section>"
    )
    return _out(f"graph {graph['id']}", body, fragment)


def _efficiency(node: Any) -> str:
    parts = []
    for task_type, score in sorted(node.scores.items()):
        eff, ok = score.efficiency.mean, score.success.mean
        parts.append(
            f"{esc(task_type or '(untyped)')}: efficiency {'-' if eff is None else f'{eff:.2f}'},"
            f" success {'-' if ok is None else f'{ok:.2f}'}"
        )
    return "<br>".join(parts) or '<span class="muted">nothing learned yet</span>'


def _proposals(proposals: Sequence[tuple[datetime, Any]], open_since: datetime | None) -> str:
    """The scaling proposals, newest first (`orchestrator.decision.scaling`)."""
    rows = []
    for at, e in reversed(proposals):
        if type(e).__name__ == "NodeScaleUpProposed":
            what = f"scale up by {e.nodes} node(s)" + (" (open)" if open_since and open_since == e.queued_since else "")
        else:
            what = f"scale down {e.node_id}"
        rows.append([esc(at.strftime("%H:%M:%S")), esc(what), esc(e.reason)])
    return table(["at", "proposal", "reason"], rows, "scaling") if rows else '<p class="muted">none</p>'


def nodes_page(
    nodes: Mapping[str, Any],
    flagged: Sequence[Mapping[str, Any]],
    fragment: bool = False,
    proposals: Sequence[tuple[datetime, Any]] = (),
    open_since: datetime | None = None,
) -> str:
    """Every node: slots, load, what it runs, learned efficiency per type; the flagged patterns;
    and the scaling proposals (``open_since``: the open scale-up episode's, if any)."""
    rows = []
    for nid in sorted(nodes):
        n = nodes[nid]
        status = "lost" if n.lost else ("draining" if n.draining else "up")
        rows.append(
            [
                f'<span class="node">{esc(nid)}</span>',
                esc(status),
                f"{len(n.active)}/{n.slots}",
                f"cpu {n.cpu_percent:.0f}% · load {n.load1:.2f} · mem {n.memory_percent:.0f}%",
                f"{n.completed} ok, {n.failed} failed",
                _efficiency(n),
            ]
        )
    flags = [
        [esc(f["kind"]), esc(f.get("type") or f.get("command")), esc(f.get("node") or ", ".join(f.get("nodes", []))),
         esc(f["what"])]
        for f in flagged
    ]  # fmt: skip
    body = table(["node", "status", "slots used", "load", "outcomes", "learned per type"], rows, "nodes")
    body += "<h3>flagged patterns</h3>" + (
        table(["kind", "what", "where", "state"], flags) if flags else '<p class="muted">none</p>'
    )
    body += "<h3>scaling proposals</h3>" + _proposals(proposals, open_since)
    return _out("nodes", body, fragment)


def trust_page(summary: Any, history: Sequence[tuple[datetime, Any]], waiting: Sequence[Any], *, can_judge: bool,
               fragment: bool = False) -> str:  # fmt: skip
    """Confidence, the autonomy level and its history, and the approvals waiting, with buttons."""
    if summary is None:
        head = '<p class="muted">the confidence projector has not written a summary yet</p>'
    else:
        pinned = f" (pinned by {esc(summary.pinned_by)})" if summary.pinned_level else ""
        head = (
            f'<p>confidence <b id="confidence">{summary.confidence:.2f}</b> · '
            f'autonomy <b id="autonomy">{esc(summary.level)}</b>'
            f"{pinned} · derived {esc(summary.derived_level)} · hits {summary.hits}, misses {summary.misses}</p>"
        )
        c = getattr(summary, "careful", None)  # careful mode while it lasts (`orchestrator.decision.careful`)
        if c is not None:
            head += f'<p id="careful">careful mode since {c.since.strftime("%H:%M:%S")}: {esc(c.reason)}</p>'
    changes = [
        [esc(at.isoformat(timespec="seconds")), esc(e.previous), esc(e.level), esc(e.by or "confidence"), esc(e.reason)]
        for at, e in history
    ]
    approvals = []
    for t in waiting:
        buttons = (
            _judge_form("approve", t.graph_id, t.task_id) + _judge_form("reject", t.graph_id, t.task_id)
            if can_judge
            else '<span class="muted">admin only</span>'
        )
        approvals.append([f'<a href="{esc(task_href(t.graph_id, t.task_id))}">{esc(t.graph_id)}/{esc(t.task_id)}</a>',
                          esc(t.title), esc(t.command), buttons])  # fmt: skip
    body = (
        head
        + "<h3>approvals waiting</h3>"
        + (
            table(["task", "title", "command", ""], approvals, "approvals")
            if approvals
            else '<p class="muted">none</p>'
        )
    )
    body += "<h3>autonomy history</h3>" + (
        table(["at", "from", "to", "by", "reason"], changes) if changes else '<p class="muted">no changes</p>'
    )
    return _out("trust", body, fragment)


def _judge_form(verb: str, graph: str, task: str) -> str:
    return (
        f'<form method="post" action="/{verb}"><input type="hidden" name="graph" value="{esc(graph)}">'
        f'<input type="hidden" name="task" value="{esc(task)}">'
        f'<input name="by" placeholder="your name" required size="10"> '
        f'<input name="reason" placeholder="reason" size="14"> '
        f'<button type="submit" class="{verb}">{verb}</button></form> '
    )

"""A picture of a run: one lane per node (a row per slot in use), a bar per attempt (pure SVG).

Bars: green success, amber partial, red failure, orange lost, grey cancelled or unfinished; a
retry (attempt > 1) has a dashed outline; the realised critical path (from the last finish back
through the dependency that finished last) has a thick dark outline. Hovering a bar shows its
task, attempt, node, times and outcome (SVG ``<title>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape

from orchestrator.graphs.submission import GraphAssembly
from schemas import events as ev

COLORS = {"success": "#3a9d5d", "partial": "#d9a21b", "failure": "#d64541", "lost": "#e67e22", "": "#9aa0a6"}
LANE_H, BAR_H, LEFT, TOP, WIDTH = 26, 18, 110, 40, 1100


@dataclass
class Bar:
    """One attempt on one node."""

    task: str
    attempt: int
    node: str
    start: datetime
    end: datetime | None = None
    outcome: str = ""
    row: int = 0
    critical: bool = False


def bars_of(events: Iterable[tuple[int, ev.AnyEvent]], graph: str) -> tuple[list[Bar], dict[str, tuple[str, ...]]]:
    """Every run attempt of ``graph`` and the graph's dependencies."""
    bars: dict[tuple[str, int], Bar] = {}
    deps: dict[str, tuple[str, ...]] = {}
    assembly = GraphAssembly()
    for _, e in events:
        if getattr(e, "graph_id", None) != graph:
            continue
        match e:
            case ev.GraphSubmitted() | ev.GraphTasksAdded():
                whole = assembly.add(e)
                if whole is not None:
                    deps = {t.id: t.depends_on for t in whole.tasks}
            case ev.TaskDispatched(phase="run"):
                bars[(e.task_id, e.attempt)] = Bar(e.task_id, e.attempt, e.node_id, e.occurred_at)
            case ev.TaskStarted() if (e.task_id, e.attempt) in bars:
                bars[(e.task_id, e.attempt)].start = e.occurred_at
            case ev.TaskCompleted(phase="run") if (e.task_id, e.attempt) in bars:
                b = bars[(e.task_id, e.attempt)]
                b.end, b.outcome = e.occurred_at, e.outcome
            case ev.TaskLost() if (e.task_id, e.attempt) in bars:
                b = bars[(e.task_id, e.attempt)]
                b.end, b.outcome = e.occurred_at, "lost"
            case _:
                pass
    return sorted(bars.values(), key=lambda b: (b.start, b.task, b.attempt)), deps


def mark_critical(bars: list[Bar], deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Mark the realised critical path; return its task ids in order."""
    ok = {b.task: b for b in bars if b.outcome in ("success", "partial") and b.end is not None}
    if not ok:
        return []
    node: Bar | None = max(ok.values(), key=lambda b: (b.end, b.task))
    path: list[str] = []
    while node is not None:
        node.critical = True
        path.append(node.task)
        done = [ok[d] for d in deps.get(node.task, ()) if d in ok]
        node = max(done, key=lambda b: (b.end, b.task)) if done else None
    return list(reversed(path))


def _rows(bars: list[Bar], end_of_run: datetime) -> dict[str, int]:
    """Assign each bar a row within its node so that bars never overlap; rows per node."""
    free: dict[str, list[datetime]] = {}
    for b in bars:
        rows = free.setdefault(b.node, [])
        for i, until in enumerate(rows):
            if until <= b.start:
                b.row, rows[i] = i, b.end or end_of_run
                break
        else:
            b.row = len(rows)
            rows.append(b.end or end_of_run)
    return {n: len(r) for n, r in free.items()}


def gantt_svg(events: Iterable[tuple[int, ev.AnyEvent]], graph: str) -> str:
    """The SVG picture of ``graph``'s run."""
    bars, deps = bars_of(events, graph)
    if not bars:
        raise ValueError(f"graph {graph!r} has no dispatched task in the log")
    path = mark_critical(bars, deps)
    t0 = min(b.start for b in bars)
    t1 = max((b.end or b.start) for b in bars)
    span = max((t1 - t0).total_seconds(), 1e-3)
    rows = _rows(bars, t1)
    lane_top: dict[str, int] = {}
    y = TOP
    for n in sorted(rows):
        lane_top[n] = y
        y += rows[n] * LANE_H + 8
    height = y + 30

    def x(t: datetime) -> float:
        return LEFT + (t - t0).total_seconds() / span * (WIDTH - LEFT - 20)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(graph)}: {len(bars)} attempts on '
        f"{len(rows)} nodes, {span:.1f}s; critical path {escape(' → '.join(path))}</text>",
    ]
    for n in sorted(rows):
        top = lane_top[n]
        out.append(f'<rect x="0" y="{top - 3}" width="{WIDTH}" height="{rows[n] * LANE_H + 4}" fill="#f4f5f7"/>')
        out.append(f'<text x="6" y="{top + 14}" font-weight="bold">{escape(n)}</text>')
    for tick in range(11):
        tx = LEFT + tick * (WIDTH - LEFT - 20) / 10
        out.append(f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{height - 24}" stroke="#ddd"/>')
        out.append(f'<text x="{tx:.1f}" y="{height - 10}" text-anchor="middle">{span * tick / 10:.1f}s</text>')
    for b in bars:
        bx, ex = x(b.start), x(b.end or t1)
        by = lane_top[b.node] + b.row * LANE_H
        stroke = 'stroke="#111" stroke-width="2.5"' if b.critical else 'stroke="#333" stroke-width="0.8"'
        dash = ' stroke-dasharray="4 2"' if b.attempt > 1 else ""
        tip = (
            f"{b.task} attempt {b.attempt} on {b.node}: {b.outcome or 'unfinished'}, "
            f"{((b.end or t1) - b.start).total_seconds():.2f}s from {(b.start - t0).total_seconds():.2f}s"
            + (" (critical path)" if b.critical else "")
        )
        out.append(
            f'<rect x="{bx:.1f}" y="{by}" width="{max(ex - bx, 1.5):.1f}" height="{BAR_H}" rx="3" '
            f'fill="{COLORS.get(b.outcome, COLORS[""])}" {stroke}{dash}><title>{escape(tip)}</title></rect>'
        )
        if ex - bx > 7 * len(b.task):
            label = b.task + (f" #{b.attempt}" if b.attempt > 1 else "")
            out.append(f'<text x="{bx + 3:.1f}" y="{by + 13}" fill="white">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def gantt_html(svg: str, graph: str) -> str:
    """The SVG in a standalone HTML page with a legend."""
    legend = " ".join(
        f'<span style="background:{c};color:white;padding:2px 6px;border-radius:3px">{k or "cancelled/unfinished"}'
        "</span>"
        for k, c in COLORS.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>niyantra gantt: {escape(graph)}</title></head>"
        f"<body style='font-family:sans-serif'><h2>{escape(graph)}</h2><p>{legend} dashed outline: a retry; "
        f"thick outline: the critical path</p>{svg}</body></html>"
    )

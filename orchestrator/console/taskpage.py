"""The console's page of one task (pure): the snapshot line, `why` in one line, every decision
with every candidate, score and reason (what `niyantra explain` prints), the timeline of its
attempts, its artifacts and its log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.console.html import esc, frame, graph_href, state_tag, table, task_href
from orchestrator.reports.explain import explain


def _fmt_s(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f}s"


def snapshot_line(row: Mapping[str, Any]) -> str:
    """The seed's line: state, node, elapsed of estimate, waiting for."""
    waiting = ", ".join(
        f"{esc(w['id'])} ({esc(w['state'])}"
        + (f", ~{w['expected_wait_s']:.0f}s" if w["expected_wait_s"] is not None else "")
        + ")"
        for w in row["waiting_for"]
    )
    return (
        f'<p class="snapshot">{state_tag(row["state"])} on <b>{esc(row["node"] or "-")}</b>'
        f" · attempt {row['attempt']} · elapsed {_fmt_s(row['elapsed_s'])} of ~{_fmt_s(row['estimate_s'])}"
        + (f" · waiting for {waiting}" if waiting else "")
        + "</p>"
    )


def _decision(d: Mapping[str, Any]) -> str:
    what = "preflight" if d["phase"] == "preflight" else f"attempt {d['attempt']}"
    cands = sorted(d["candidates"], key=lambda c: (not c["selected"], not c["eligible"], -c["score"]))
    rows = [
        [
            "✓" if c["selected"] else ("·" if c["eligible"] else "✗"),
            f'<span class="{"sel" if c["selected"] else ""}">{esc(c["node"])}</span>',
            f"{c['score']:.4f}",
            esc(c["reason"]),
        ]
        for c in cands
    ]
    return (
        f'<div class="decision"><h4>seq {d["seq"]} · {esc(d["at"])} · {what} → {esc(d["node"])}</h4>'
        f"<p class=muted>policy {esc(d['policy'])}{', strategy ' + esc(d['strategy']) if d['strategy'] else ''}"
        f" · confidence {d['confidence']:.2f} · autonomy {esc(d['autonomy'])} · world {esc(d['world_hash'])}</p>"
        + table(["", "node", "score", "reason"], rows, "candidates")
        + "</div>"
    )


def _artifacts(events: Iterable[tuple[int, Any]]) -> str:
    rows = []
    for _, e in events:
        for out in getattr(e, "outputs", ()) or ():
            rows.append(
                [
                    f"attempt {getattr(e, 'attempt', '-')}",
                    esc(out.path),
                    f"{out.size:,} B",
                    f"<code>{esc(out.digest[:16])}</code>",
                ]
            )
    return (
        table(["from", "path", "size", "digest"], rows, "artifacts") if rows else '<p class="muted">none recorded</p>'
    )


def task_page(graph: str, task: str, row: Mapping[str, Any], why: Mapping[str, Any], events: list[tuple[int, Any]],
              log_text: str | None, fragment: bool = False) -> str:  # fmt: skip
    """The whole page of one task."""
    report = explain(events)
    gen = "".join(
        f"<p>generated at seq {g['seq']} by rule {esc(g['rule'])} after {esc(g['trigger'])} "
        f"ended {esc(g['trigger_outcome'])}:"
        f" {esc(g['reason'])}</p>"
        for g in report.get("generated", [])
    )
    timeline = table(
        ["seq", "at", "event", "what"],
        ([str(t["seq"]), esc(t["at"][11:23]), esc(t["type"]), esc(t["what"])] for t in report["timeline"]),
        "timeline",
    )
    decisions = "".join(_decision(d) for d in report["decisions"]) or '<p class="muted">no decision yet</p>'
    log = f'<pre class="log">{esc(log_text)}</pre>' if log_text is not None else '<p class="muted">no stored output</p>'
    body = (
        f'<p>graph <a href="{esc(graph_href(graph))}">{esc(graph)}</a> · '
        f'<a href="{esc(task_href(graph, task))}">permalink</a></p>'
        + snapshot_line(row)
        + f'<p class="why"><b>why:</b> {esc(why["headline"])}</p>'
        + "".join(f"<p class=muted>{esc(x)}</p>" for x in why.get("details", []))
        + gen
        + f"<section><h3>decisions</h3>{decisions}</section>"
        + f"<section><h3>attempts and events</h3>{timeline}</section>"
        + f"<section><h3>artifacts</h3>{_artifacts(events)}</section>"
        + f"<section><h3>log (latest attempt)</h3>{log}</section>"
    )
    return body if fragment else frame(f"task {task}", body)

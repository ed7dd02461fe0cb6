"""The console's page frame and small HTML helpers (pure).

Every value a user gave (ids, titles, commands, reasons, logs) is escaped here or by the
caller with `esc`; links to tasks and graphs carry ids as query parameters, so an id with
slashes, spaces or unicode reaches its page unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#1f2933;color:#fff;padding:8px 16px}header a{color:#9cc3f5;margin-right:14px}
main{padding:12px 16px}table{border-collapse:collapse;background:#fff}
td,th{padding:3px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
.state{padding:1px 6px;border-radius:3px}.s-succeeded{background:#c7ecc9}
.s-failed{background:#f9c7cb}.s-running,.s-dispatched{background:#fbe6a6}
.s-ready{background:#d5e6fb}.s-pending{background:#e4e7eb}.s-cancelled{background:#d0d0d0}
.bar{display:inline-block;width:160px;height:10px;background:#e4e7eb}
.bar i{display:block;height:10px;background:#57ae5b}
pre{background:#fff;padding:8px;overflow:auto;max-height:480px}.sel{font-weight:bold}.muted{color:#7b8794}
section{margin-bottom:18px}form{display:inline}
"""

LIVE_JS = """
const es = new EventSource('/live');
let busy = false;
es.onmessage = async () => {
  if (busy) return; busy = true;
  try {
    const r = await fetch(location.href, {headers: {'X-Niyantra-Fragment': '1'}});
    if (r.ok) document.getElementById('live').innerHTML = await r.text();
  } finally { busy = false; }
};
"""


def esc(value: Any) -> str:
    """Text as HTML (None as an empty string)."""
    return "" if value is None else escape(str(value))


def graph_href(graph: str) -> str:
    """The page of a graph."""
    return "/graph?" + urlencode({"id": graph})


def task_href(graph: str, task: str) -> str:
    """The page of a task."""
    return "/task?" + urlencode({"graph": graph, "task": task})


def state_tag(state: str) -> str:
    """A task's state as a coloured tag."""
    return f'<span class="state s-{esc(state)}">{esc(state)}</span>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; cells are HTML already (escape values with `esc`)."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def frame(title: str, body: str, *, live: bool = True) -> str:
    """A whole page: header with the console's sections, the body (inside ``#live`` when it follows changes)."""
    script = f"<script>{LIVE_JS}</script>" if live else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)} · niyantra</title>'
        f"<style>{CSS}</style></head><body><header><b>niyantra</b> &nbsp; "
        '<a href="/">runs</a><a href="/nodes">nodes</a><a href="/trust">trust</a>'
        '<a href="/metrics">metrics</a></header>'
        f'<main><h2>{esc(title)}</h2><div id="live">{body}</div></main>{script}</body></html>'
    )


def not_found(what: str) -> str:
    """The 404 page, naming what was asked for."""
    return frame("not found", f"<p>{esc(what)}</p>", live=False)

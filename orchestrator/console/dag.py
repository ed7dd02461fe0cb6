"""A graph's tasks drawn as a layered DAG in SVG (pure).

Layers are the longest path from a root (a task's layer is one more than its deepest
dependency); inside a layer tasks are ordered by the mean position of their dependencies
(one barycentre sweep), then by id, so the drawing is deterministic. Each task is a box coloured
by its state; the realised critical path is outlined. Beyond ``detail_limit`` tasks a layer is
drawn as one box per state with its count (level of detail), so a 10,000-task graph stays
readable and small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

STATE_COLOURS = {
    "pending": "#d0d4da",
    "ready": "#9cc3f5",
    "dispatched": "#f5d76e",
    "running": "#f0b429",
    "succeeded": "#57ae5b",
    "failed": "#e12d39",
    "cancelled": "#8a8a8a",
    "waiting": "#c39bd3",
}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 26, 24, 46, 12
DETAIL_LIMIT = 1000


@dataclass(frozen=True)
class Node:
    """One task to draw: its id, state and the ids it depends on."""

    id: str
    state: str
    depends_on: tuple[str, ...] = ()


def layers_of(nodes: Sequence[Node]) -> list[list[str]]:
    """Tasks by layer (longest path from a root), each layer in barycentre-then-id order."""
    by_id = {n.id: n for n in nodes}
    depth: dict[str, int] = {}
    for n in sorted(by_id):  # iterative DFS: deep graphs must not hit the recursion limit
        stack = [(n, False)]
        while stack:
            tid, expanded = stack.pop()
            if tid in depth:
                continue
            deps = [d for d in by_id[tid].depends_on if d in by_id]
            if expanded or not deps:
                depth[tid] = 1 + max((depth.get(d, 0) for d in deps), default=-1)
                continue
            stack.append((tid, True))
            stack.extend((d, False) for d in deps if d not in depth)
    layers: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for tid in sorted(depth):
        layers[depth[tid]].append(tid)
    position: dict[str, float] = {}
    for layer in layers:

        def centre(tid: str) -> float:
            ds = [position[d] for d in by_id[tid].depends_on if d in position]
            return sum(ds) / len(ds) if ds else 0.0

        layer.sort(key=lambda tid: (centre(tid), tid))
        position.update((tid, float(i)) for i, tid in enumerate(layer))
    return layers


def _box(x: int, y: int, label: str, state: str, href: str, critical: bool) -> str:
    stroke = ' stroke="#1f2933" stroke-width="3"' if critical else ' stroke="#52606d" stroke-width="1"'
    short = label if len(label) <= 20 else label[:9] + "…" + label[-10:]
    return (
        f'<a href="{escape(href)}"><g class="task" data-task="{escape(label)}" data-state="{escape(state)}">'
        f"<title>{escape(label)}: {escape(state)}</title>"
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" '
        f'fill="{STATE_COLOURS.get(state, "#fff")}"{stroke}/>'
        f'<text x="{x + BOX_W // 2}" y="{y + 17}" text-anchor="middle" font-size="11">{escape(short)}</text></g></a>'
    )


def dag_svg(
    nodes: Sequence[Node], critical: Iterable[str], href: Mapping[str, str], detail_limit: int = DETAIL_LIMIT
) -> str:
    """The SVG of the graph; ``href`` maps a task id to its page."""
    layers = layers_of(nodes)
    if len(nodes) > detail_limit:
        return _summary_svg(nodes, layers)
    crit = set(critical)
    width = PAD * 2 + max((len(layer) for layer in layers), default=1) * (BOX_W + GAP_X)
    height = PAD * 2 + len(layers) * (BOX_H + GAP_Y)
    at: dict[str, tuple[int, int]] = {}
    for row, layer in enumerate(layers):
        for col, tid in enumerate(layer):
            at[tid] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    edges = []
    for n in sorted(nodes, key=lambda n: n.id):
        for d in n.depends_on:
            if d in at:
                (x1, y1), (x2, y2) = at[d], at[n.id]
                hot = d in crit and n.id in crit
                colour, w = ("#1f2933", 2) if hot else ("#9aa5b1", 1)
                edges.append(
                    f'<line x1="{x1 + BOX_W // 2}" y1="{y1 + BOX_H}" x2="{x2 + BOX_W // 2}" y2="{y2}"'
                    f' stroke="{colour}" stroke-width="{w}"/>'
                )
    states = {n.id: n.state for n in nodes}
    boxes = [_box(*at[t], t, states[t], href.get(t, "#"), t in crit) for layer in layers for t in layer]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">' + "".join(edges) + "".join(boxes) + "</svg>"
    )


def _summary_svg(nodes: Sequence[Node], layers: list[list[str]]) -> str:
    """One row per layer, one box per state with the count of its tasks."""
    states = {n.id: n.state for n in nodes}
    rows = []
    for i, layer in enumerate(layers):
        counts: dict[str, int] = {}
        for tid in layer:
            counts[states[tid]] = counts.get(states[tid], 0) + 1
        y = PAD + i * (BOX_H + 8)
        rows.append(f'<text x="{PAD}" y="{y + 17}" font-size="11">layer {i}</text>')
        for j, (state, count) in enumerate(sorted(counts.items())):
            x = PAD + 70 + j * (BOX_W + 8)
            rows.append(
                f'<g class="layer-state" data-state="{state}"><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}"'
                f' rx="4" fill="{STATE_COLOURS.get(state, "#fff")}"/><text x="{x + 8}" y="{y + 17}" font-size="11">'
                f"{count} {escape(state)}</text></g>"
            )
    width = PAD * 2 + 70 + len(STATE_COLOURS) * (BOX_W + 8)
    height = PAD * 2 + len(layers) * (BOX_H + 8)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag summary" width="{width}" height="{height}">'
        + "".join(rows)
        + "</svg>"
    )

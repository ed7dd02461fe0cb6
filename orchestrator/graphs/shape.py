"""The shape of a task graph: cycles, topological order, depth and the critical path.

Pure functions over ``deps``: a mapping from task id to the ids it depends on. Every loop is
iterative (a 100,000-task chain must not hit the recursion limit) and every iteration is over
insertion or sorted order, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Deps = Mapping[str, Sequence[str]]


def topological_order(deps: Deps) -> list[str] | None:
    """Ids so that each comes after all its dependencies (Kahn), or None if there is a cycle.

    Dependencies on ids missing from ``deps`` are ignored (they are reported elsewhere).
    """
    indegree = {t: 0 for t in deps}
    dependents: dict[str, list[str]] = {t: [] for t in deps}
    for t, ds in deps.items():
        for d in ds:
            if d in indegree:
                indegree[t] += 1
                dependents[d].append(t)
    order = [t for t, n in indegree.items() if n == 0]
    i = 0
    while i < len(order):
        for c in dependents[order[i]]:
            indegree[c] -= 1
            if indegree[c] == 0:
                order.append(c)
        i += 1
    return order if len(order) == len(indegree) else None


class _Tarjan:
    """Iterative Tarjan over the edges task → dependency (a 100k-task chain must not recurse)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.on_stack: set[str] = set()
        self.stack: list[str] = []
        self.found: list[list[str]] = []

    def visit(self, root: str) -> None:
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                self.index[node] = self.low[node] = len(self.index)
                self.stack.append(node)
                self.on_stack.add(node)
            child = self._next_unvisited(node, i)
            if child is not None:
                work.append((node, child[1]))
                work.append((child[0], 0))
                continue
            if self.low[node] == self.index[node]:
                self._pop_component(node)
            if work:
                parent = work[-1][0]
                self.low[parent] = min(self.low[parent], self.low[node])

    def _next_unvisited(self, node: str, i: int) -> tuple[str, int] | None:
        children = self.deps[node]
        while i < len(children):
            child = children[i]
            i += 1
            if child not in self.deps:
                continue
            if child not in self.index:
                return child, i
            if child in self.on_stack:
                self.low[node] = min(self.low[node], self.index[child])
        return None

    def _pop_component(self, node: str) -> None:
        comp: list[str] = []
        while True:
            w = self.stack.pop()
            self.on_stack.discard(w)
            comp.append(w)
            if w == node:
                break
        if len(comp) > 1 or node in self.deps[node]:
            self.found.append(sorted(comp))


def strongly_connected(deps: Deps) -> list[list[str]]:
    """Every strongly connected component with a cycle (size > 1, or a self-dependency).

    Each component is sorted, and the list is sorted by its first id.
    """
    t = _Tarjan(deps)
    for root in deps:
        if root not in t.index:
            t.visit(root)
    return sorted(t.found, key=lambda c: c[0])


def cycle_in(component: Sequence[str], deps: Deps) -> list[str]:
    """One cycle through the smallest id of a strongly connected component, as a path a → … → a.

    Breadth-first from the start along dependency edges inside the component, so the path is
    a shortest cycle through that id.
    """
    members = set(component)
    start = min(component)
    if start in deps[start]:
        return [start, start]
    parent: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for d in sorted(deps[node]):
                if d == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = parent[node]
                    return [start, *reversed(path[1:]), start]
                if d in members and d not in seen:
                    seen.add(d)
                    parent[d] = node
                    nxt.append(d)
        frontier = nxt
    raise ValueError(f"{component!r} is not strongly connected")


def find_cycles(deps: Deps) -> list[list[str]]:
    """One cycle path per strongly connected component that has a cycle."""
    return [cycle_in(c, deps) for c in strongly_connected(deps)]


def find_cycle(deps: Deps) -> list[str] | None:
    """The first cycle as a path ``[a, b, ..., a]``, or None."""
    cycles = find_cycles(deps)
    return cycles[0] if cycles else None


@dataclass(frozen=True)
class GraphShape:
    """What `niyantra validate` prints about a valid graph."""

    tasks: int
    edges: int
    depth: int
    critical_path_s: float
    critical_path: tuple[str, ...]
    roots: int
    leaves: int
    unestimated: int


def graph_shape(deps: Deps, estimates: Mapping[str, float | None]) -> GraphShape:
    """Depth (tasks on the longest chain) and the critical path (largest sum of estimates).

    A task without an estimate counts as 0 s on the critical path; ``unestimated`` says how many.
    ``deps`` must be acyclic.
    """
    order = topological_order(deps)
    if order is None:
        raise ValueError("graph has a cycle")
    depth: dict[str, int] = {}
    finish: dict[str, float] = {}
    best_parent: dict[str, str | None] = {}
    has_dependents: set[str] = set()
    edges = 0
    for t in order:
        ds = [d for d in deps[t] if d in deps]
        edges += len(ds)
        has_dependents.update(ds)
        depth[t] = 1 + max((depth[d] for d in ds), default=0)
        parent = max(ds, key=lambda d: (finish[d], d), default=None)
        best_parent[t] = parent
        finish[t] = (finish[parent] if parent is not None else 0.0) + (estimates.get(t) or 0.0)
    end = max(order, key=lambda t: (finish[t], t), default=None)
    path: list[str] = []
    node = end
    while node is not None:
        path.append(node)
        node = best_parent[node]
    return GraphShape(
        tasks=len(order),
        edges=edges,
        depth=max(depth.values(), default=0),
        critical_path_s=finish[end] if end is not None else 0.0,
        critical_path=tuple(reversed(path)),
        roots=sum(1 for t in order if not any(d in deps for d in deps[t])),
        leaves=len(order) - len(has_dependents),
        unestimated=sum(1 for t in order if estimates.get(t) is None),
    )

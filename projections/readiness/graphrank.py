"""Static facts of a submitted graph, computed once at submit: ranks, depths, downstream counts.

Pure and deterministic (every loop runs in submission order). Definitions:

- **depth**: the task's level, 0 for a task without dependencies, else 1 + the deepest
  dependency. A graph's ``depth`` is the number of tasks on its longest chain (max level + 1),
  the same count ``niyantra validate`` prints.
- **rank** (upward rank, HEFT's ``rank_u``): the task's own estimate plus the longest estimated
  chain of tasks after it. The largest rank is the graph's critical-path estimate. A task without
  an estimate counts as the mean estimate of the tasks of its ``type`` in the same graph that
  have one, else as ``DEFAULT_ESTIMATE_S`` (60 s). The view is a pure function of the log, so it
  does not use the learned duration of node-scores here (that changes as work runs; ranks do
  not). The decider may re-weigh with learned estimates.
- **downstream**: the number of distinct tasks that transitively depend on the task. Exact
  (bitsets) for graphs up to ``EXACT_DOWNSTREAM_LIMIT`` tasks; above that it is the upper bound
  min(tasks - 1, Σ over direct dependents of 1 + their count), which counts a task reachable by
  two paths twice. Good enough for a priority and linear in the edges.

A graph whose edges form a cycle (cannot pass validation, but a view must not hang on a bad log)
gets level 0 and its own estimate as rank for the tasks on or after the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from schemas.records import TaskSpec

DEFAULT_ESTIMATE_S = 60.0
EXACT_DOWNSTREAM_LIMIT = 20_000


class Shape(msgspec.Struct, frozen=True, gc=False):
    """The static facts of one task."""

    depth: int
    rank_s: float
    downstream: int


def estimates(tasks: Sequence[TaskSpec]) -> list[float]:
    """Each task's estimate, with the type mean or the default where it is missing."""
    by_type: dict[str, list[float]] = {}
    for t in tasks:
        if t.estimate_s is not None:
            by_type.setdefault(t.type, []).append(t.estimate_s)
    means = {k: sum(v) / len(v) for k, v in by_type.items()}
    return [
        t.estimate_s
        if t.estimate_s is not None
        else (means.get(t.type, DEFAULT_ESTIMATE_S) if t.type else DEFAULT_ESTIMATE_S)
        for t in tasks
    ]


def _order(n: int, parents: list[list[int]], children: list[list[int]]) -> list[int]:
    indegree = [len(p) for p in parents]
    order = [i for i in range(n) if indegree[i] == 0]
    k = 0
    while k < len(order):
        for c in children[order[k]]:
            indegree[c] -= 1
            if indegree[c] == 0:
                order.append(c)
        k += 1
    return order


def _parents(tasks: Sequence[TaskSpec]) -> list[list[int]]:
    """Each task's dependencies within the graph, as sorted indexes (unknown ids left out)."""
    index = {t.id: i for i, t in enumerate(tasks)}
    parents: list[list[int]] = []
    for t in tasks:
        deps = t.depends_on
        if not deps:
            parents.append([])
        elif len(deps) == 1:  # the common case, without a set and a sort
            d = index.get(deps[0])
            parents.append([] if d is None else [d])
        else:
            parents.append(sorted({index[d] for d in deps if d in index}))
    return parents


def graph_shapes(tasks: Sequence[TaskSpec]) -> list[Shape]:
    """The shape of every task, in the order of ``tasks``."""
    n = len(tasks)
    parents = _parents(tasks)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    order = _order(n, parents, children)
    est = estimates(tasks)
    depth = [0] * n
    for i in order:
        di = depth[i] + 1
        for c in children[i]:
            if depth[c] < di:
                depth[c] = di
    rank = list(est)
    down = [0] * n
    exact = n <= EXACT_DOWNSTREAM_LIMIT
    bits = [0] * n if exact else []
    for i in reversed(order):
        cs = children[i]
        if cs:
            rank[i] = est[i] + max(rank[c] for c in cs)
        if exact:
            b = 0
            for c in cs:
                b |= bits[c] | (1 << c)
            bits[i] = b
            down[i] = b.bit_count()
        else:
            down[i] = min(n - 1, sum(1 + down[c] for c in cs))
    return [Shape(d, round(r, 6), k) for d, r, k in zip(depth, rank, down, strict=True)]

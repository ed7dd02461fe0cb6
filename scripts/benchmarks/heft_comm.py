"""Reference HEFT with communication costs (Topcuoglu, Hariri, Wu, "Performance-effective and
low-complexity task scheduling for heterogeneous computing", IEEE TPDS 13(3), 2002), for the
benchmarks only (never imported by the product).

- Upward rank: ``rank_u(i) = w̄_i + max over successors j of (c̄_ij + rank_u(j))``, with ``w̄_i``
  the mean computation cost of i over the processors and ``c̄_ij`` the mean communication cost
  of the edge (with one bandwidth between every pair of processors and no start-up latency, as
  here, it is the edge's data over the bandwidth, as in the paper's example graph).
- Tasks in decreasing ``rank_u`` (ties: topological order, so a task never precedes its parents).
- Processor selection, insertion-based: a task's earliest start on ``p`` is the first idle gap
  of ``p``, at or after the time its inputs arrive there (a parent's finish, plus the edge's
  cost when the parent ran on another processor), long enough for its computation cost on
  ``p``; the task goes where it finishes earliest (ties: the lower processor index).

Communication never occupies a processor (the classic model), and an edge's data is sent once
per edge (no cache of what a processor already received).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """HEFT's result: the makespan, each task's processor and (start, finish), the ranks."""

    makespan: float
    proc: dict[str, int]
    times: dict[str, tuple[float, float]]
    rank: dict[str, float]


def _successors(tasks: Sequence[str], preds: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {t: [] for t in tasks}
    for t in tasks:
        for p in preds.get(t, ()):
            succ[p].append(t)
    return succ


def _topological(tasks: Sequence[str], preds: Mapping[str, Sequence[str]]) -> list[str]:
    indeg = {t: len(preds.get(t, ())) for t in tasks}
    succ = _successors(tasks, preds)
    order, ready = [], [t for t in tasks if indeg[t] == 0]
    while ready:
        t = ready.pop()
        order.append(t)
        for s in succ[t]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(tasks):
        raise ValueError("the graph has a cycle")
    return order


def upward_ranks(
    tasks: Sequence[str],
    preds: Mapping[str, Sequence[str]],
    comp: Mapping[str, Sequence[float]],
    comm: Mapping[tuple[str, str], float],
) -> tuple[dict[str, float], list[str]]:
    """``rank_u`` of every task, and a topological order."""
    order = _topological(tasks, preds)
    succ = _successors(tasks, preds)
    rank: dict[str, float] = {}
    for t in reversed(order):
        w = sum(comp[t]) / len(comp[t])
        rank[t] = w + max((comm.get((t, s), 0.0) + rank[s] for s in succ[t]), default=0.0)
    return rank, order


def _earliest_gap(busy: list[tuple[float, float]], ready: float, length: float) -> float:
    """The first start >= ``ready`` where ``length`` fits between the sorted busy intervals."""
    i = bisect.bisect_right(busy, (ready, float("inf"))) - 1
    start = ready if i < 0 else max(ready, busy[i][1])
    for a, b in busy[max(i + 1, 0) :]:
        if start + length <= a:
            return start
        start = max(start, b)
    return start


def heft(
    tasks: Sequence[str],
    preds: Mapping[str, Sequence[str]],
    comp: Mapping[str, Sequence[float]],
    comm: Mapping[tuple[str, str], float],
) -> Schedule:
    """Schedule ``tasks`` (``preds``: each task's parents; ``comp[t][p]``: t's cost on processor
    p; ``comm[(i, j)]``: the edge's cost between two different processors)."""
    rank, order = upward_ranks(tasks, preds, comp, comm)
    position = {t: i for i, t in enumerate(order)}
    n_procs = len(next(iter(comp.values())))
    busy: list[list[tuple[float, float]]] = [[] for _ in range(n_procs)]
    proc: dict[str, int] = {}
    times: dict[str, tuple[float, float]] = {}
    for t in sorted(tasks, key=lambda x: (-rank[x], position[x])):
        best: tuple[float, int, float] | None = None
        for p in range(n_procs):
            ready = max(
                (times[u][1] + (0.0 if proc[u] == p else comm.get((u, t), 0.0)) for u in preds.get(t, ())),
                default=0.0,
            )
            start = _earliest_gap(busy[p], ready, comp[t][p])
            finish = start + comp[t][p]
            if best is None or finish < best[0]:
                best = (finish, p, start)
        assert best is not None
        finish, p, start = best
        proc[t], times[t] = p, (start, finish)
        bisect.insort(busy[p], (start, finish))
    return Schedule(max((f for _, f in times.values()), default=0.0), proc, times, rank)

"""The ready tasks as a decision takes them: in priority order, and as one digest (`ReadySet`).

**Order.** Under every policy a ready task's priority is ``base + rate × max(now − ready_since, 0)``
(`orchestrator.decision.scoring.priority_terms`), so for the tasks that became ready at or before ``now``
the order does not depend on ``now``: it is the order of the *static key*
``base − rate × ready_since`` (seconds since the epoch), highest first, ties by (graph, task).
The others (ready in the future of ``now``, or without a ``ready_since``) have priority ``base``;
they are set aside, sorted by (−base, graph, task) and merged in: at each step the next task of
the static order (its priority ``static + rate × now``) is compared with the next set-aside one
by (−priority, graph, task). The order is *defined* by this procedure, so the kept structure and
a computation from scratch agree exactly, float rounding included. Cautious autonomy and careful
mode (`orchestrator.decision.careful`) order by estimate (`task_estimate`: the task's own, else
its type's learned mean, else the default; shortest first, ties by key), which depends on the
learned types; that order is computed from scratch each round (O(ready)).

**Digest.** The ready set's digest is the count of ready tasks and the sum (mod 2^128) of a hash
of each one's (graph, task, seq): a commutative combination, kept current by adding and
subtracting one task at a time, and equal to the sum computed from scratch.

A `ReadySet` is kept by the decider's `TaskIndex` and by replay's folds, value by value; `decide`
uses it when its views carry one built for the same scoring config, and computes the same order
and digest from the views otherwise (`ranked`, `digest_of`).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from orchestrator.decision.scoring import ScoringConfig, aging_rate, priority_base, priority_terms, task_estimate
from orchestrator.decision.sortedkeys import SortedKeys
from projections.readiness.fold import TaskView

if TYPE_CHECKING:
    from orchestrator.decision.decide import Views

Key = tuple[str, str]
_MASK = (1 << 128) - 1
_encode = msgspec.json.Encoder().encode


def seconds(at: datetime) -> float:
    """Seconds since the epoch (a naive time is taken as UTC)."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def task_hash(task: TaskView) -> int:
    """A ready task's share of the digest: a 128-bit hash of its (graph, task, seq)."""
    h = hashlib.blake2b(_encode((task.graph_id, task.task_id, task.seq)), digest_size=16).digest()
    return int.from_bytes(h, "big")


def _digest(count: int, total: int) -> str:
    return f"{count}:{total:032x}"


class _Entry(msgspec.Struct, frozen=True):
    """What a ready task put in the structures: its static key (or None: no ready_since) and base."""

    order: tuple[float, str, str] | None  # (−static key, graph, task)
    since: float | None  # ready_since in seconds
    base: float
    seq: int
    hash: int  # `task_hash` of its (graph, task, seq)


class ReadySet:
    """The ready tasks of a readiness view in decide's order (for ``cfg``) and their digest, kept
    current by `put` (a task's new value) and `drop` (a task gone)."""

    def __init__(self, cfg: ScoringConfig, tasks: Iterable[TaskView] = ()) -> None:
        self.cfg = cfg
        self._order = SortedKeys()  # (−static, graph, task) of every dated ready task
        self._latest = SortedKeys()  # (−since, graph, task) of the same: the latest ready first
        self._undated: dict[Key, float] = {}  # base of each ready task without a ready_since
        self._entries: dict[Key, _Entry] = {}
        self._sum = 0
        for t in tasks:
            self.put(t)

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, task: TaskView) -> None:
        """Take a task's current value (ready or not)."""
        key = (task.graph_id, task.task_id)
        old = self._entries.get(key)
        if task.state != "ready":
            if old is not None:
                self._remove(key, old)
            return
        base, rate = priority_terms(task, self.cfg)
        since = seconds(task.ready_since) if task.ready_since is not None else None
        order = (-(base - rate * since), key[0], key[1]) if since is not None else None
        h = old.hash if old is not None and old.seq == task.seq else task_hash(task)
        new = _Entry(order, since, base, task.seq, h)
        if new == old:
            return
        if old is not None:
            self._remove(key, old)
        self._entries[key] = new
        self._sum = (self._sum + h) & _MASK
        if order is None or since is None:
            self._undated[key] = base
        else:
            self._order.add(order)
            self._latest.add((-since, key[0], key[1]))

    def drop(self, key: Key) -> None:
        """Forget a task (its value was deleted)."""
        old = self._entries.get(key)
        if old is not None:
            self._remove(key, old)

    def _remove(self, key: Key, old: _Entry) -> None:
        del self._entries[key]
        self._sum = (self._sum - old.hash) & _MASK
        if old.order is None or old.since is None:
            del self._undated[key]
        else:
            self._order.remove(old.order)
            self._latest.remove((-old.since, key[0], key[1]))

    def digest(self) -> str:
        """The ready set's digest (see the module's docstring)."""
        return _digest(len(self._entries), self._sum)

    def ranked(self, now: datetime) -> Iterator[Key]:
        """The ready tasks' keys in decide's order at ``now``, lazily."""
        now_s = seconds(now)
        aside: list[tuple[float, str, str]] = [(-b, g, t) for (g, t), b in self._undated.items()]
        future: set[Key] = set()
        for neg_since, g, t in self._latest:
            if -neg_since <= now_s:
                break
            future.add((g, t))
            aside.append((-self._entries[(g, t)].base, g, t))
        aside.sort()
        dated: Iterable[tuple[float, str, str]] = self._order
        if future:
            dated = (k for k in self._order if (k[1], k[2]) not in future)
        return _merged(iter(dated), aside, aging_rate(self.cfg), now_s)


def _merged(
    dated: Iterator[tuple[float, str, str]], aside: list[tuple[float, str, str]], rate: float, now_s: float
) -> Iterator[Key]:
    """The dated tasks (by −static key) merged with the set-aside ones (by −base), each dated task
    compared at its priority ``static + rate × now``."""
    i, n = 0, len(aside)
    for neg_static, g, t in dated:
        here = (-(-neg_static + rate * now_s), g, t)
        while i < n and aside[i] < here:
            yield aside[i][1], aside[i][2]
            i += 1
        yield g, t
    for _, g, t in aside[i:]:
        yield g, t


def _ready(views: Views) -> list[TaskView]:
    if views.ready is not None:
        return [views.tasks[k] for k in views.ready]
    return [t for t in views.tasks.values() if t.state == "ready"]


def _from_scratch(ready: list[TaskView], now: datetime, cfg: ScoringConfig) -> Iterator[Key]:
    """`ReadySet.ranked` computed from the tasks alone: a heap of the dated tasks' static keys,
    popped only as far as the round gets, merged with the set-aside ones the same way."""
    now_s = seconds(now)
    heap: list[tuple[float, str, str]] = []
    aside: list[tuple[float, str, str]] = []
    rate = aging_rate(cfg)
    for t in ready:
        base = priority_base(t, cfg)
        at = t.ready_since
        since = None if at is None else at.timestamp() if at.tzinfo is not None else seconds(at)
        if since is None or since > now_s:
            aside.append((-base, t.graph_id, t.task_id))
        else:
            heap.append((-(base - rate * since), t.graph_id, t.task_id))
    heapq.heapify(heap)
    aside.sort()

    def popped() -> Iterator[tuple[float, str, str]]:
        while heap:
            yield heapq.heappop(heap)

    return _merged(popped(), aside, rate, now_s)


def ranked(views: Views, now: datetime, cfg: ScoringConfig, shortest_first: bool = False) -> Iterator[TaskView]:
    """The ready tasks, most urgent first (``shortest_first``: smallest estimate first), ties by
    key, lazily: from the views' `ReadySet` when it was kept for ``cfg``, else from scratch."""
    tasks: Mapping[Key, TaskView] = views.tasks
    if shortest_first:
        heap = [(task_estimate(t, views.types, cfg)[0], t.graph_id, t.task_id) for t in _ready(views)]
        heapq.heapify(heap)
        keys: Iterator[Key] = ((g, t) for _, g, t in (heapq.heappop(heap) for _ in range(len(heap))))
    elif views.ready_set is not None and views.ready_set.cfg == cfg:
        keys = views.ready_set.ranked(now)
    else:
        keys = _from_scratch(_ready(views), now, cfg)
    return (tasks[k] for k in keys)


def digest_of(views: Views) -> str:
    """The ready set's digest: from the views' `ReadySet` when they carry one, else from scratch."""
    if views.ready_set is not None:
        return views.ready_set.digest()
    ready = _ready(views)
    return _digest(len(ready), sum(task_hash(t) for t in ready) & _MASK)

"""Cache hits as decisions: a ready cacheable task whose action key has a usable entry is reused.

Pure, like `decide`, which calls `cache_hits` before it looks at any node (a hit needs none):
for each ready task with an action key (`projections.readiness.cache`: cache on, tier 1, data
declared), the entry of that key is looked up in the task's own trust domain, then in each domain
its graph trusts, in the order the graph lists them; a revoked entry is not usable. The entries
and each task id's last key are the readiness view's (``views.cache``, by their KV keys), so the
same views give the same hits, byte for byte, and ``replay --check`` re-derives them.

A hit's outputs are known the moment it is decided, so the same round goes on down the graph:
a waiting cacheable task whose last dependencies are this round's hits gets its whole key
exactly as the readiness fold will give it once those hits are folded (`keyed`, over the hits'
outputs), and hits in turn when that key has a usable entry. A whole unchanged build is one
round, not one round per dependency level; each such hit names the round's hits it relies on
(`Hit.needs`), so the decider appends it only after they are acknowledged, and the fold, which
takes a hit only for a ready task, meets them in that order.

A cacheable task that is dispatched instead says why in ``TaskDispatched.cache_miss``
(`cache_miss`): "no entry" for a task id never cached in its domain, the entry revoked, or the
form's fields that changed since the key last cached or reused for that task id.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrator.decision.actionkey import NO_ENTRY, miss_reason
from projections.readiness.cache import keyed
from projections.readiness.entries import CacheEntry, CacheLast, TaskView
from schemas.events import TaskCacheHit
from schemas.subjects import cache_key, cache_last_key

if TYPE_CHECKING:
    from orchestrator.decision.decide import DeciderConfig, Views


def _domains(task: TaskView) -> tuple[str, ...]:
    return (task.cache_domain, *task.cache_trusts)


def usable_entry(task: TaskView, cache: Mapping[str, Any]) -> CacheEntry | None:
    """The entry the task may reuse: of its key, in its domain or a trusted one, not revoked."""
    for domain in _domains(task):
        entry = cache.get(cache_key(domain, task.action_key))
        if isinstance(entry, CacheEntry) and not entry.revoked:
            return entry
    return None


def cache_miss(task: TaskView, cache: Mapping[str, Any]) -> str:
    """Why a cacheable task found nothing to reuse, in words ("" for a task that is not cacheable)."""
    if not task.action_key:
        return ""
    entry = cache.get(cache_key(task.cache_domain, task.action_key))
    if isinstance(entry, CacheEntry) and entry.revoked:
        return f"entry revoked: {entry.revoked}"
    last = cache.get(cache_last_key(task.cache_domain, task.task_id))
    if not isinstance(last, CacheLast):
        return NO_ENTRY
    before = next((e for d in _domains(task) if isinstance(e := cache.get(cache_key(d, last.key)), CacheEntry)), None)
    if before is None:
        return NO_ENTRY
    return miss_reason(before.form, task.action_form)


def _ready_keyed(views: Views) -> list[TaskView]:
    tasks = views.tasks
    keys = views.ready if views.ready is not None else [k for k, t in tasks.items() if t.state == "ready"]
    return [t for k in sorted(keys) if (t := tasks[k]).action_key and t.state == "ready"]


class Hit(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A cache hit of the round: the task as the hit sees it (with its whole key), the event, and
    the round's earlier hits it relies on ((graph, task); empty for a task ready in the views)."""

    task: TaskView
    event: TaskCacheHit
    needs: tuple[tuple[str, str], ...] = ()


def cache_hits(views: Views, now: datetime, config: DeciderConfig) -> list[Hit]:
    """The round's cache hits: each ready task with a usable entry, in (graph, task) order, then
    level by level the waiting tasks those hits complete (see the module's docstring); at most
    ``config.max_dispatches`` in all."""
    cache = views.cache
    if not cache:
        return []  # nothing was ever cached: no ready task is looked at
    out: list[Hit] = []
    for task in _ready_keyed(views):
        entry = usable_entry(task, cache)
        if entry is None:
            continue
        out.append(Hit(task=task, event=hit_event(task, entry, views, now, config)))
        if len(out) >= config.max_dispatches:
            return out
    level = out
    done: dict[tuple[str, str], TaskView] = {}
    while level and len(out) < config.max_dispatches:
        for h in level:
            done[(h.task.graph_id, h.task.task_id)] = msgspec.structs.replace(
                h.task, state="succeeded", outputs=h.event.outputs
            )
        level = _next_level(views, level, done, now, config, config.max_dispatches - len(out))
        out += level
    return out


def _next_level(
    views: Views,
    level: list[Hit],
    done: dict[tuple[str, str], TaskView],
    now: datetime,
    config: DeciderConfig,
    room: int,
) -> list[Hit]:
    """The hits of the waiting tasks whose last dependencies are this round's hits (``done``)."""
    tasks, cache = views.tasks, views.cache
    seen = {(h.task.graph_id, d) for h in level for d in h.task.dependents}
    out: list[Hit] = []
    for key in sorted(seen):
        t = tasks.get(key)
        if t is None or key in done or t.state != "pending" or not t.action_form or t.action_key:
            continue
        if not t.waiting_for or not all((t.graph_id, w) in done for w in t.waiting_for):
            continue
        task = msgspec.structs.replace(t, **keyed(t, ChainMap(done, tasks)))
        entry = usable_entry(task, cache)
        if entry is None:
            continue
        needs = tuple(sorted((t.graph_id, w) for w in t.waiting_for))
        out.append(Hit(task=task, event=hit_event(task, entry, views, now, config, needs), needs=needs))
        if len(out) >= room:
            break
    return out


def hit_event(
    task: TaskView,
    entry: CacheEntry,
    views: Views,
    now: datetime,
    config: DeciderConfig,
    needs: tuple[tuple[str, str], ...] = (),
) -> TaskCacheHit:
    """The `TaskCacheHit` that reuses ``entry`` for ``task`` (``needs``: the round's hits that completed its key)."""
    where = "its domain" if entry.domain == task.cache_domain else f"trusted domain {entry.domain!r}"
    reason = (
        f"action key {task.action_key[:12]} matches the success of {entry.graph_id}/{entry.task_id}"
        f" attempt {entry.attempt} on {entry.node_id} ({where}; {len(entry.outputs)} outputs)"
    )
    if needs:
        reason += "; its key completed by this round's hits of " + ", ".join(t for _, t in needs)
    return TaskCacheHit(
        event_id=f"cachehit:{task.graph_id}:{task.task_id}:{task.attempt}",
        occurred_at=now,
        causation_id=f"readiness@{task.seq}",
        correlation_id=task.graph_id,
        graph_id=task.graph_id,
        task_id=task.task_id,
        key=task.action_key,
        domain=entry.domain,
        reused_graph=entry.graph_id,
        reused_task=entry.task_id,
        reused_attempt=entry.attempt,
        reason=reason,
        outputs=entry.outputs,
        view_seqs=dict(sorted(views.seqs.items())),
        decider_id=config.decider_id,
        decider_version=config.version,
        policy=config.policy,
        now=now,
    )

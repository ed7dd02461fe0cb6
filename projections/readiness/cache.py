"""The cache's part of the readiness fold: action keys, cache entries, the last key per task id.

Why here and not a view of its own: an entry is made from a task's own success, and its key
from the task's definition, the graph's source manifest and its dependencies' outputs, which
this fold already holds at exactly that sequence; `decide` then reads tasks and entries of one
view at one sequence (a decision's ``view_seqs`` need no new member, and ``replay --check``
folds them together). The decider stays stateless: it reads the entries from the view's KV
bucket like the tasks (keys ``cache.<domain>.<key>`` and ``cachelast.<domain>.<task>``,
`schemas.subjects.cache_key`).

Rules (pure, like the fold):

- a task is *cacheable* when its graph has the cache on, it is not listed ``uncached``, it is
  tier 1, and it declares its data (inputs or outputs, or its graph has a source tree): a task
  whose reads are undeclared has no sound key. Its form (`actionkey.static_form`) is taken at
  submit, its key once its dependencies succeeded (their outputs complete the form);
- an entry is made only by an agent's ``TaskCompleted`` that succeeds a cacheable task with the
  outcome ``success`` (a partial result is never reused), carrying outputs when the task declares
  any. Entries are immutable: a later success under the same key leaves the first one, unless it
  was revoked (`ev.CacheEntryRevoked`);
- a ``TaskCacheHit`` and an entry made both record the key as the task id's last in its domain.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from orchestrator.decision import actionkey
from projections.readiness.entries import CacheEntry, CacheLast, TaskView
from schemas import events as ev
from schemas import records as rec
from schemas.subjects import cache_key, cache_last_key

_NO_OUTPUTS = actionkey.static_form(rec.TaskSpec(id="-", command="-"))["outputs"]


def cacheable(g: ev.GraphSubmitted, t: rec.TaskSpec) -> bool:
    """The task's successes are recorded and reused (see the module's docstring)."""
    return g.cache and t.tier == 1 and t.id not in g.uncached and bool(g.source_tree or t.inputs or t.outputs)


def domain_of(g: ev.GraphSubmitted) -> str:
    """The graph's trust domain: its ``cache_domain``, else its ``source`` (the graph file as submitted)."""
    return g.cache_domain or g.source


def with_form(
    g: ev.GraphSubmitted, t: rec.TaskSpec, new: TaskView, index: actionkey.SourceIndex | None = None
) -> TaskView:
    """The submitted task's entry with its cache fields (unchanged when it is not cacheable);
    ``index``: the graph's source files indexed once for all its tasks."""
    if not cacheable(g, t):
        return new
    form = actionkey.static_form(t, g.source_files, g.source_tree, g.filesets, index)
    key = ""
    if not t.depends_on:
        form = actionkey.with_deps(form, ())
        key = actionkey.action_key(form)
    return msgspec.structs.replace(
        new, action_form=form, action_key=key, cache_domain=domain_of(g), cache_trusts=g.cache_trusts
    )


def keyed(dep: TaskView, tasks: Mapping[tuple[str, str], TaskView]) -> dict[str, object]:
    """The fields to set on a cacheable task whose dependencies all succeeded: its whole form and key."""
    if not dep.action_form or dep.action_key:
        return {}
    outputs = [o for d in dep.depends_on for o in _outputs(tasks.get((dep.graph_id, d)))]
    form = actionkey.with_deps(dep.action_form, outputs)
    return {"action_form": form, "action_key": actionkey.action_key(form)}


def _outputs(t: TaskView | None) -> tuple[rec.ArtifactRecord, ...]:
    return t.outputs if t is not None else ()


def entry_of(before: TaskView, after: TaskView, e: ev.TaskCompleted, seq: int) -> CacheEntry | None:
    """The cache entry an agent's completion makes, or None (see the module's docstring)."""
    if not after.action_key or before.state == "succeeded" or after.state != "succeeded":
        return None
    if e.phase != "run" or e.outcome != "success" or after.outcome != "success":
        return None
    if not e.outputs and after.action_form.get("outputs") != _NO_OUTPUTS:
        return None  # it declares outputs and the agent stored none: nothing a dependent could get
    return CacheEntry(
        domain=after.cache_domain,
        key=after.action_key,
        graph_id=after.graph_id,
        task_id=after.task_id,
        attempt=e.attempt,
        node_id=e.node_id,
        outputs=e.outputs,
        form=after.action_form,
        seq=seq,
    )


def remember(
    cache: dict[str, msgspec.Struct], touched: set[str], entry: CacheEntry | None, task: TaskView, seq: int
) -> None:
    """Store a new entry (unless a usable one has its key) and the task id's last key."""
    if entry is not None:
        k = cache_key(entry.domain, entry.key)
        old = cache.get(k)
        if not isinstance(old, CacheEntry) or old.revoked:
            cache[k] = entry
            touched.add(k)
    if task.action_key:
        last = cache_last_key(task.cache_domain, task.task_id)
        cache[last] = CacheLast(domain=task.cache_domain, task_id=task.task_id, key=task.action_key, seq=seq)
        touched.add(last)


def revoke(cache: dict[str, msgspec.Struct], touched: set[str], e: ev.CacheEntryRevoked, seq: int) -> str | None:
    """Mark an entry revoked; None, or why the event changed nothing."""
    k = cache_key(e.domain, e.key)
    old = cache.get(k)
    if not isinstance(old, CacheEntry):
        return f"seq {seq}: CacheEntryRevoked for {e.key[:12]} in {e.domain!r}: no such entry"
    if not old.revoked:
        cache[k] = msgspec.structs.replace(old, revoked=e.reason or "revoked", seq=seq)
        touched.add(k)
    return None

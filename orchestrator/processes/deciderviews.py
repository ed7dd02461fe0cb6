"""The decide input assembled from the decider's KV mirrors: `TaskIndex` keeps the readiness
mirror's tasks, the ready ones and their `ReadySet` current value by value; `build_views` makes
the `Views` of one round (also what `why`, `snapshot` and the console decide over).
"""

from __future__ import annotations

from typing import Any

from orchestrator.decision.decide import Views
from orchestrator.decision.readyset import ReadySet
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.slots import RoundMemo
from projections.readiness.fold import GraphView, TaskView
from projections.viewmirror import ViewMirror


class TaskIndex:
    """The readiness mirror's tasks by (graph, task), the keys of the ready ones and their order
    and digest (`ReadySet`, for the scoring config ``cfg``), kept current value by value, so a
    round does not rebuild them from every key."""

    def __init__(self, mirror: ViewMirror, cfg: ScoringConfig | None = None) -> None:
        self.tasks: dict[tuple[str, str], TaskView] = {}
        self.ready: set[tuple[str, str]] = set()
        self.ready_set = ReadySet(cfg or ScoringConfig())
        for key, value in mirror.values.items():
            self(key, None, value)
        mirror.on_value = self

    def __call__(self, key: str, old: Any, new: Any) -> None:
        if not key.startswith("task."):
            return
        if old is not None:
            k = (old.graph_id, old.task_id)
            self.tasks.pop(k, None)
            self.ready.discard(k)
            if new is None or (new.graph_id, new.task_id) != k:
                self.ready_set.drop(k)
        if new is not None:
            k = (new.graph_id, new.task_id)
            self.tasks[k] = new
            if new.state == "ready":
                self.ready.add(k)
            self.ready_set.put(new)


def build_views(
    tasks: ViewMirror,
    nodes: ViewMirror,
    confidence: ViewMirror | None = None,
    index: TaskIndex | None = None,
    memo: RoundMemo | None = None,
    graphs: dict[str, GraphView] | None = None,
) -> Views:
    """Assemble the decide input from the mirrors (the tasks from ``index`` when given: then the
    views share its live dicts, valid until the next await; ``memo``: what rounds share, kept by
    the process across rounds)."""
    if index is not None:
        task_map: dict[tuple[str, str], TaskView] = index.tasks
        ready: set[tuple[str, str]] | None = index.ready
        ready_set: ReadySet | None = index.ready_set
    else:
        task_map = {(v.graph_id, v.task_id): v for k, v in tasks.values.items() if k.startswith("task.")}
        ready = ready_set = None
    node_map = {v.node_id: v for k, v in nodes.values.items() if k.startswith("node.")}
    graph_map = graphs
    if graph_map is None:
        graph_map = {v.graph_id: v for k, v in tasks.values.items() if k.startswith("graph.")}
    types = {v.type: v for k, v in nodes.values.items() if k.startswith("type.")}
    patterns = {k: v for k, v in nodes.values.items() if k.startswith("pattern.")}
    seqs = {"readiness": tasks.seq, "node-scores": nodes.seq}
    summary = confidence.values.get("summary") if confidence is not None else None
    if confidence is not None:
        seqs["confidence"] = confidence.seq
    judged: dict[str, Any] = (  # the confidence view's figures, when it has written them
        {}
        if summary is None
        else {
            "confidence": summary.confidence,
            "autonomy": summary.level,
            "quality_threshold": summary.quality_threshold,
            "careful": summary.careful,
            "careful_seq": summary.careful_seq,
        }
    )
    return Views(
        cache=tasks.values,  # the cache entries are the readiness view's ``cache.`` and ``cachelast.`` keys
        tasks=task_map,
        nodes=node_map,
        seqs=seqs,
        types=types,
        patterns=patterns,
        ready=ready,
        ready_set=ready_set,
        memo=memo,
        graphs=graph_map,
        health=tasks.values.get("health"),
        **judged,
    )

"""The decider's task index follows its readiness mirror value by value (no server: `_apply` only)."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.decider import TaskIndex, ViewMirror, build_views
from projections.readiness import TaskView
from schemas import subjects as S

enc = msgspec.json.Encoder()


def task(tid: str, state: str) -> bytes:
    return enc.encode(TaskView(graph_id="g", task_id=tid, command="true", state=state))  # type: ignore[arg-type]


def mirrors() -> tuple[ViewMirror, ViewMirror, TaskIndex]:
    tasks = ViewMirror(None, S.KV_READINESS, {"task": TaskView})
    nodes = ViewMirror(None, S.KV_NODE_SCORES, {})
    tasks._apply("task.g.a", task("a", "ready"))  # values present before the index was made
    return tasks, nodes, TaskIndex(tasks)


@pytest.mark.parametrize(
    ("changes", "ready", "known"),
    [
        ([], {"a"}, {"a"}),
        ([("task.g.b", task("b", "pending"))], {"a"}, {"a", "b"}),
        ([("task.g.a", task("a", "dispatched"))], set(), {"a"}),
        ([("task.g.b", task("b", "pending")), ("task.g.b", task("b", "ready"))], {"a", "b"}, {"a", "b"}),
        ([("task.g.a", None)], set(), set()),
        ([("task.g.a", b"{not json")], {"a"}, {"a"}),  # malformed: skipped, the old value stays
        ([("graph.g", b"{}")], {"a"}, {"a"}),  # not a task key
    ],
)
def test_index_follows_every_change(changes: list[tuple[str, bytes | None]], ready: set[str], known: set[str]) -> None:
    tasks, nodes, index = mirrors()
    for key, value in changes:
        tasks._apply(key, value)
    assert {t for _, t in index.ready} == ready
    assert {t for _, t in index.tasks} == known
    with_index = build_views(tasks, nodes, None, index)
    rebuilt = build_views(tasks, nodes)
    assert dict(with_index.tasks) == dict(rebuilt.tasks)
    assert with_index.ready_tasks() == rebuilt.ready_tasks()

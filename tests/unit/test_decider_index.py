"""The decider's task index follows its readiness mirror value by value (no server: `_apply` only)."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.decision.readyset import digest_of, ranked
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.processes.deciderviews import TaskIndex, build_views
from projections.readiness.fold import TaskView
from projections.viewmirror import ViewMirror
from schemas import subjects as S
from tests.unit.builders import T0, at

enc = msgspec.json.Encoder()


def task(tid: str, state: str, since: float | None = 0.0, seq: int = 1) -> bytes:
    ready_since = None if since is None else at(since)
    view = TaskView(graph_id="g", task_id=tid, command="true", state=state, ready_since=ready_since, seq=seq)  # type: ignore[arg-type]
    return enc.encode(view)


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
        (
            [("task.g.b", task("b", "ready", 5.0)), ("task.g.a", task("a", "ready", None, seq=2))],
            {"a", "b"},
            {"a", "b"},
        ),
        (
            [("task.g.b", task("b", "ready", -5.0)), ("task.g.b", task("b", "running")), ("task.g.a", None)],
            set(),
            {"b"},
        ),
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
    assert with_index.ready_set is not None and rebuilt.ready_set is None
    cfg = ScoringConfig()
    assert list(ranked(with_index, T0, cfg, False)) == list(ranked(rebuilt, T0, cfg, False))
    assert digest_of(with_index) == digest_of(rebuilt)


@pytest.mark.parametrize(("ready", "seconds"), [(0, 1.0), (20_000, 1.0), (40_000, 2.0), (100_000, 5.0)])
def test_a_long_queue_is_scanned_for_unschedulable_tasks_less_often(ready, seconds):
    from orchestrator.processes.decider import scan_interval

    assert scan_interval(ready) == seconds

"""What `niyantra wait` shows live and when it stops (pure)."""

from __future__ import annotations

import pytest

from orchestrator.cli.wait import GraphEntries, finished, graphs_done, shown
from orchestrator.reports.queries import StatusReport
from projections.readiness.fold import GraphView


def _task(tid: str, state: str, graph: str = "g") -> dict:
    return {"id": tid, "graph": graph, "state": state}


def _report(tasks: list[dict], done: list[bool] | None = None) -> StatusReport:
    graphs = [{"id": f"g{i}", "done": d} for i, d in enumerate(done or [])]
    return StatusReport(seq=7, tasks=tasks, graphs=graphs)


def test_a_small_graph_is_shown_whole():
    tasks = [_task("a", "succeeded"), _task("b", "pending"), _task("c", "running")]
    rows, hidden = shown(_report(tasks), limit=3)
    assert rows.tasks == tasks and hidden == 0


def test_a_large_graph_shows_the_active_tasks_first_up_to_the_limit():
    tasks = [_task(f"p{i}", "pending") for i in range(5)] + [
        _task("r2", "ready"),
        _task("d1", "dispatched"),
        _task("x", "failed"),
        _task("r1", "ready"),
        _task("u", "running"),
        _task("s", "succeeded"),
    ]
    rows, hidden = shown(_report(tasks), limit=4)
    assert [t["id"] for t in rows.tasks] == ["x", "u", "d1", "r1"]
    assert hidden == len(tasks) - 4 and rows.seq == 7


def test_a_large_graph_with_nothing_active_shows_no_rows_and_counts_them_all():
    tasks = [_task(f"s{i}", "succeeded") for i in range(10)]
    rows, hidden = shown(_report(tasks), limit=3)
    assert rows.tasks == [] and hidden == 10


@pytest.mark.parametrize(
    ("done", "expected"),
    [([], False), ([False], False), ([True], True), ([True, False], False), ([True, True], True)],
)
def test_the_wait_ends_when_every_graph_shown_is_done(done, expected):
    assert finished(_report([], done)) is expected


def _view(gid: str, total: int, succeeded: int = 0, failed: int = 0, running: int = 0) -> GraphView:
    counts = {k: v for k, v in {"succeeded": succeeded, "failed": failed, "running": running}.items() if v}
    return GraphView(graph_id=gid, total=total, counts=counts)


@pytest.mark.parametrize(
    ("views", "graph", "expected"),
    [
        ([], None, False),
        ([], "a", False),
        ([_view("a", 2, succeeded=1, running=1)], "a", False),
        ([_view("a", 2, succeeded=1, failed=1)], "a", True),
        ([_view("a", 2, succeeded=2)], "b", False),
        ([_view("a", 2, succeeded=2), _view("b", 1, running=1)], "a", True),
        ([_view("a", 2, succeeded=2), _view("b", 1, running=1)], None, False),
        ([_view("a", 2, succeeded=2), _view("b", 1, failed=1)], None, True),
    ],
)
def test_done_is_read_from_the_graph_entries_alone(views, graph, expected):
    assert graphs_done({v.graph_id: v for v in views}, graph) is expected


def test_the_graph_entries_follow_the_mirror_values():
    entries = GraphEntries()
    first, later = _view("a", 2, running=1), _view("a", 2, succeeded=2)
    entries("graph.a", None, first)
    entries("task.a.x", None, object())  # a task's value is not a graph entry
    assert entries.graphs == {"a": first}
    entries("graph.a", first, later)
    assert graphs_done(entries.graphs, "a")
    entries("graph.a", later, None)  # deleted
    assert entries.graphs == {}


def _graph(completed: int, failed: int, total: int) -> dict:
    return {"totals": {"completed": completed, "failed": failed, "total": total}}


@pytest.mark.parametrize(
    ("graphs", "expected"),
    [
        ([], False),
        ([_graph(1, 0, 2)], False),
        ([_graph(1, 1, 2)], True),
        ([_graph(2, 0, 2), _graph(0, 0, 1)], False),
    ],
)
def test_watch_until_done_stops_when_every_graph_has_ended(graphs, expected):
    from orchestrator.cli.status import _all_done

    assert _all_done(graphs) is expected

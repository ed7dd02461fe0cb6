"""`why`: the one-line reason a task is not running, from the decider's own rules."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.why import why
from schemas import events as ev
from tests.unit.builders import at, dispatched, graph, observed, registered, spec, started
from tests.unit.test_decide import HISTORY, took, views

CONFIG = DeciderConfig(node_ttl_s=20)


def headline(task: str, *events, now: float = 1, autonomy: str = "full", graph_id: str = "g") -> str:
    v = views(*events, autonomy=autonomy)
    return why(v.tasks[(graph_id, task)], v, at(now), CONFIG)["headline"]


@pytest.mark.parametrize(
    ("name", "task", "events", "now", "autonomy", "expected"),
    [
        (
            "waiting for dependencies",
            "c",
            (graph("g", spec("a"), spec("b"), spec("c", "a", "b")), registered("n1")),
            1,
            "full",
            "waiting for a and b",
        ),
        (
            "awaiting approval",
            "r",
            (graph("g", spec("r", tier=3)), registered("n1")),
            1,
            "full",
            "awaiting approval: niyantra approve g/r --by NAME",
        ),
        (
            "no node with the label",
            "m",
            (graph("g", spec("m", labels={"os": "macos"})), registered("n1", os="linux")),
            1,
            "full",
            "no live node with label os=macos",
        ),
        ("no node at all", "a", (graph("g", spec("a")),), 1, "full", "no node has registered"),
        (
            "autonomy cautious and tier 2",
            "d",
            (graph("g", spec("d", tier=2, preflight="x")), registered("n1")),
            1,
            "cautious",
            "autonomy cautious and the task is tier 2",
        ),
        (
            "every node busy",
            "b",
            (graph("g", spec("a"), spec("b")), registered("n1", slots=1), dispatched("g", "a", "n1")),
            2,
            "full",
            "every usable node is busy (n1)",
        ),
        (
            "about to be dispatched",
            "a",
            (graph("g", spec("a")), registered("n1")),
            1,
            "full",
            "ready: the next decision sends it to n1",
        ),
        (
            "running",
            "a",
            (graph("g", spec("a")), registered("n1"), dispatched("g", "a", "n1"), started("g", "a", "n1")),
            3,
            "full",
            "it is running on n1 (attempt 1, since 1s ago)",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_why_not_running(name, task, events, now, autonomy, expected):
    assert headline(task, *events, now=now, autonomy=autonomy) == expected


def test_waiting_for_a_faster_busy_node_is_said():
    history = [HISTORY, registered("slow", slots=1), registered("fast", slots=1)]
    history += took("p0", "slow", 100.0) + took("p1", "fast", 2.5)
    busy = [dispatched("h", "p2", "fast", t=110), started("h", "p2", "fast", t=110)]
    busy += [observed("fast", t=110, running=1), observed("slow", t=110)]
    events = [*history, *busy, graph("g", spec("a", type="build", estimate_s=10.0))]
    text = headline("a", *events, now=111)
    assert text.startswith("ready, waiting for fast: it frees up in about")


def test_blockers_detail_their_state():
    v = views(
        graph("g", spec("a", estimate_s=30.0), spec("c", "a")),
        registered("n1"),
        dispatched("g", "a", "n1"),
        started("g", "a", "n1", t=2),
    )
    report = why(v.tasks[("g", "c")], v, at(12), dataclasses.replace(CONFIG))
    assert report["details"] == ["a: running on n1, about 20s left"]


def test_finished_task():
    v = views(
        graph("g", spec("a")),
        registered("n1"),
        dispatched("g", "a", "n1"),
        ev.TaskCancelled(event_id="c", occurred_at=at(2), graph_id="g", task_id="a", by="ana", reason="stop"),
    )
    assert why(v.tasks[("g", "a")], v, at(3), CONFIG)["headline"].startswith("it has finished: cancelled")


def test_a_retry_in_backoff_says_until_when():
    from tests.unit.test_decide import _failed

    assert headline("a", *_failed("failure"), now=4) == "in backoff until 03:47:08 after attempt 1 (failure)"

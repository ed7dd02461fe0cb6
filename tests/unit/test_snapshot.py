"""The status snapshot: totals, times, blockers with expected waits, the next node, priority."""

from __future__ import annotations

from orchestrator.cli.status import render
from orchestrator.decision.decide import DeciderConfig
from orchestrator.reports.snapshot import snapshot, totals_text
from tests.unit.builders import dispatched, graph, registered, spec, started
from tests.unit.test_decide import views

CONFIG = DeciderConfig(node_ttl_s=20)


def test_snapshot_rows_and_totals():
    v = views(
        graph("g", spec("a", estimate_s=30.0), spec("b", estimate_s=5.0), spec("c", "a", estimate_s=10.0)),
        registered("n1", slots=2),
        dispatched("g", "a", "n1"),
        started("g", "a", "n1", t=2),
    )
    from tests.unit.builders import at

    [g] = snapshot(v, at(12), CONFIG)
    assert totals_text(g) == "Total tasks: 3 | Completed: 0 | Running: 1 | Ready: 1 | Blocked: 1"
    rows = {r["id"]: r for r in g["tasks"]}
    assert (rows["a"]["state"], rows["a"]["node"], rows["a"]["elapsed_s"], rows["a"]["estimate_s"]) == (
        "running",
        "n1",
        10.0,
        30.0,
    )
    assert rows["c"]["waiting_for"] == [{"id": "a", "state": "running", "expected_wait_s": 20.0}]
    assert rows["b"]["scheduled_node"] == "n1" and rows["b"]["priority"] is not None
    assert [r["id"] for r in g["tasks"]] == ["a", "b", "c"]
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render([g]))
    text = console.export_text()
    assert "[RUNNING] a" in text and "waiting for a (~20s)" in text and "next: n1" in text

"""The metrics table is a pure function of the log; each rule checked on a small hand-made log."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.reports.explain import explain, summary
from orchestrator.reports.metrics import compute_metrics
from schemas import events as ev
from tests.unit.builders import T0, at, completed, dispatched, started, submitted


def node(n: str, slots: int = 1) -> ev.NodeRegistered:
    return ev.NodeRegistered(event_id=f"r{n}", occurred_at=T0, node_id=n, slots=slots)


def log(*events: ev.AnyEvent) -> list:
    return [(i, e.occurred_at, e) for i, e in enumerate(events, start=1)]


def with_cause(d: ev.TaskDispatched, seq: int) -> ev.TaskDispatched:
    import msgspec

    return msgspec.structs.replace(d, causation_id=f"readiness@{seq}")


def test_rates_depth_latency_and_utilization():
    events = log(
        node("n1"),
        node("n2"),
        submitted("g", ("A", ()), ("B", ("A",)), ("C", ("A",)), max_attempts=2),  # seq 3
        with_cause(dispatched("g", "A", "n1", t=0.5), 3),
        started("g", "A", "n1", t=1),
        completed("g", "A", "n1", t=3),  # seq 6: A ok first time; B, C ready
        with_cause(dispatched("g", "B", "n1", t=6.1), 6),
        with_cause(dispatched("g", "C", "n2", t=6.3), 6),
        started("g", "B", "n1", t=7),
        started("g", "C", "n2", t=7),
        completed("g", "B", "n1", outcome="failure", t=8),
        completed("g", "C", "n2", t=9),
        dispatched("g", "B", "n2", attempt=2, t=9.5),
        started("g", "B", "n2", attempt=2, t=10),
        completed("g", "B", "n2", attempt=2, t=11),
    )
    m = compute_metrics(events)
    assert m["graphs_submitted"] == m["graphs_completed"] == 1
    assert m["first_attempt_success_rate"] == round(2 / 3, 4)
    assert m["success_after_retry_rate"] == 1.0
    assert m["graph_depth_max"] == 2 and m["graph_depth_avg"] == 2.0
    # latencies: A 0.5 s after the submit (seq 3 at T0), B 3.1 s and C 3.3 s after A's completion
    assert m["decisions"] == 3 and abs(m["decision_latency_ms_avg"] - (500 + 3100 + 3300) / 3) < 1e-6
    # busy: A 2 s + B 1 s + C 2 s + B 1 s = 6 s over 2 slots × (11 - 0.5) s
    assert m["node_utilization"] == round(6 / (2 * 10.5), 4)
    assert m["human_interventions"] == 0 and m["tasks_generated"] == 0


def test_empty_log_has_no_rates():
    m = compute_metrics([])
    assert m["first_attempt_success_rate"] is None and m["node_utilization"] is None and m["graphs_completed"] == 0


def test_people_and_generated_work_are_counted():
    import msgspec

    gen = msgspec.structs.replace(submitted("f", ("X", ())), submitted_by="niyantra:rule:integration-tests")
    cancel = ev.TaskCancelled(event_id="c", occurred_at=T0 + timedelta(days=14), graph_id="f", task_id="X", by="ana")
    m = compute_metrics(log(gen, cancel))
    assert m["tasks_generated"] == 1
    assert m["human_interventions"] == 1 and m["human_interventions_per_week"] == 0.5


def test_explain_lists_decisions_and_timeline_in_order():
    d = dispatched("g", "A", "n1")
    report = explain([(4, d), (5, started("g", "A", "n1")), (6, completed("g", "A", "n1"))])
    assert [x["seq"] for x in report["decisions"]] == [4]
    assert [t["type"] for t in report["timeline"]] == ["TaskDispatched", "TaskStarted", "TaskCompleted"]
    assert summary(completed("g", "A", "n1", outcome="failure", t=at(1).second)).startswith("attempt 1 failure on n1")

"""`/metrics` in the Prometheus text format (pure: families from view values and the log).

Names follow Prometheus conventions: base units (seconds, ratios), ``_total`` for counters.
What `niyantra metrics` computes from the archive is exported from the same function over the
same events (`compute_metrics`), so the two agree; the rest comes from the views the decider
reads (tasks by state, nodes, confidence) and from the log the console follows (dispatches,
decision latency, queue wait, cache hits, malformed events, how far each view lags the log).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from orchestrator.reports.metrics import compute_metrics, decision_cause
from schemas import events as ev
from schemas import records as rec

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LEVELS = get_args(rec.AutonomyLevel)
# `niyantra metrics` figures: (key, metric name, help, scale to base units)
FIGURES = (
    ("graphs_submitted", "niyantra_graphs_submitted", "Graphs submitted", 1.0),
    ("graphs_completed", "niyantra_graphs_completed", "Graphs whose every task ended", 1.0),
    ("tasks_generated", "niyantra_tasks_generated", "Tasks the system gave itself", 1.0),
    (
        "first_attempt_success_rate",
        "niyantra_first_attempt_success_ratio",
        "Share of tasks whose first attempt succeeded",
        1.0,
    ),
    (
        "success_after_retry_rate",
        "niyantra_success_after_retry_ratio",
        "Share of first-attempt failures that later succeeded",
        1.0,
    ),
    (
        "decision_latency_ms_avg",
        "niyantra_decision_latency_average_seconds",
        "Mean view change to dispatch appended",
        0.001,
    ),
    ("decision_latency_ms_p99", "niyantra_decision_latency_p99_seconds", "p99 view change to dispatch appended", 0.001),
    ("graph_depth_max", "niyantra_graph_depth_max", "Tasks on the longest chain of any graph", 1.0),
    ("node_utilization", "niyantra_node_utilization_ratio", "Busy slot-seconds over available slot-seconds", 1.0),
    (
        "human_interventions",
        "niyantra_human_interventions",
        "Approvals, rejections, cancels, drains and autonomy changes by a person",
        1.0,
    ),
)


def _histogram(
    name: str,
    doc: str,
    values: Sequence[float],
    buckets: Sequence[float],
    labels: Mapping[str, str] | None = None,
    family: HistogramMetricFamily | None = None,
) -> HistogramMetricFamily:
    h = family or HistogramMetricFamily(name, doc, labels=list(labels or {}))
    cumulative = [(str(b), sum(1 for v in values if v <= b)) for b in buckets] + [("+Inf", len(values))]
    h.add_metric(list((labels or {}).values()), cumulative, sum(values))
    return h


def _log_families(rows: Sequence[tuple[int, datetime, Any]]) -> list[Metric]:
    stored = {seq: at for seq, at, _ in rows}
    dispatches = CounterMetricFamily("niyantra_dispatches", "Dispatch decisions appended", labels=["phase"])
    counts = {"run": 0, "preflight": 0}
    latencies: list[float] = []
    waits: list[float] = []
    ready_at: dict[tuple[str, str, int], datetime] = {}
    hits = 0
    for _, at, e in rows:
        if isinstance(e, ev.TaskDispatched):
            counts[e.phase] = counts.get(e.phase, 0) + 1
            cause = decision_cause(e)
            if cause in stored and e.phase == "run":
                latencies.append((at - stored[cause]).total_seconds())
                ready_at[(e.graph_id, e.task_id, e.attempt)] = stored[cause]
        elif isinstance(e, ev.TaskStarted) and (e.graph_id, e.task_id, e.attempt) in ready_at:
            waits.append((at - ready_at.pop((e.graph_id, e.task_id, e.attempt))).total_seconds())
        elif type(e).__name__ == "TaskCacheHit":
            hits += 1
    for phase, n in sorted(counts.items()):
        dispatches.add_metric([phase], n)
    return [
        dispatches,
        _histogram("niyantra_decision_latency_seconds", "View change to dispatch appended", latencies, LATENCY_BUCKETS),
        _histogram(
            "niyantra_queue_wait_seconds", "From the event that readied a task to its start", waits, WAIT_BUCKETS
        ),
        CounterMetricFamily("niyantra_cache_hits", "Tasks completed from the cache instead of run", value=hits),
    ]


def _view_families(tasks: Iterable[Any], nodes: Mapping[str, Any], summary: Any) -> list[Metric]:
    by_state = dict.fromkeys(get_args(rec.TaskState), 0)
    durations: dict[str, list[float]] = {}
    for t in tasks:
        by_state[t.state] = by_state.get(t.state, 0) + 1
        if t.state == "succeeded" and t.duration_s is not None:
            durations.setdefault(t.type or "", []).append(t.duration_s)
    states = GaugeMetricFamily("niyantra_tasks", "Tasks by state (the readiness view)", labels=["state"])
    for s, n in sorted(by_state.items()):
        states.add_metric([s], n)
    duration = HistogramMetricFamily(
        "niyantra_task_duration_seconds", "Successful run duration by task type", labels=["type"]
    )
    for task_type, values in sorted(durations.items()):
        _histogram("", "", values, DURATION_BUCKETS, {"type": task_type}, duration)
    slots = GaugeMetricFamily("niyantra_node_slots", "Slots a node offers", labels=["node"])
    busy = GaugeMetricFamily("niyantra_node_busy_slots", "Attempts a node holds now", labels=["node"])
    up = GaugeMetricFamily("niyantra_node_up", "1 while a node is live (not lost)", labels=["node"])
    for nid in sorted(nodes):
        n = nodes[nid]
        slots.add_metric([nid], n.slots)
        busy.add_metric([nid], len(n.active))
        up.add_metric([nid], 0 if n.lost else 1)
    out: list[Metric] = [states, duration, slots, busy, up]
    if summary is not None:
        out.append(GaugeMetricFamily("niyantra_confidence", "System confidence (0 to 1)", value=summary.confidence))
        level = GaugeMetricFamily("niyantra_autonomy_level", "1 for the autonomy level in force", labels=["level"])
        for name in LEVELS:
            level.add_metric([name], 1 if summary.level == name else 0)
        out.append(level)
    return out


def families(*, tasks: Iterable[Any], nodes: Mapping[str, Any], summary: Any, rows: Sequence[tuple[int, datetime, Any]],
             malformed: int, head: int, view_seqs: Mapping[str, int]) -> list[Metric]:  # fmt: skip
    """Every metric family the console exports."""
    figures = compute_metrics(rows)
    out = _view_families(tasks, nodes, summary) + _log_families(rows)
    for key, name, doc, scale in FIGURES:
        if figures.get(key) is not None:  # no data is no sample, never a zero
            out.append(GaugeMetricFamily(name, doc, value=float(figures[key]) * scale))
    out.append(
        CounterMetricFamily("niyantra_malformed_events", "Malformed messages on the log, skipped", value=malformed)
    )
    lag = GaugeMetricFamily("niyantra_view_lag_events", "Events on the log a view has not applied yet", labels=["view"])
    for view, seq in sorted(view_seqs.items()):
        lag.add_metric([view], max(0, head - seq))
    out.append(lag)
    return out


class _Fixed(Collector):
    def __init__(self, fams: list[Metric]) -> None:
        self.fams = fams

    def collect(self) -> Iterable[Metric]:
        return self.fams


def exposition(fams: list[Metric]) -> bytes:
    """The families in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(fams))
    return generate_latest(registry)

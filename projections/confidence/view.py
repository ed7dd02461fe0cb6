"""`ConfidenceView`, the confidence fold's state: its parameters, predictions, per-node records
and summary, and the answers the fold asks again and again (the next confidence after a hit or a
miss, a prediction's time spans), kept per value. The rules are in `projections.confidence.fold`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.graphs.submission import GraphAssembly
from projections.confidence.entries import ConfidenceSummary, NodeConfidence, Prediction
from projections.decay import Decayed
from projections.feedback import QualityGate
from schemas.ids import token
from schemas.records import AutonomyLevel

CONFIDENCE_PARAMS: dict[str, float] = {
    "initial": 1.0,
    "hit_step": 0.01,
    "miss_step": 0.05,
    "full_at": 0.8,
    "cautious_at": 0.5,
    "deadline_factor": 1.5,
    "deadline_grace_s": 10.0,
    "default_expected_s": 60.0,
    "half_life_s": 1800.0,
}
SUMMARY_KEY = "summary"
RESTRICTIVENESS: dict[str, int] = {"full": 0, "cautious": 1, "supervised": 2}


@dataclass
class ConfidenceView:
    """Predictions, per-node records and the summary; ``specs``/``durations`` are fold state."""

    params: dict[str, float] = field(default_factory=lambda: dict(CONFIDENCE_PARAMS))
    predictions: dict[tuple[str, str], Prediction] = field(default_factory=dict)
    nodes: dict[str, NodeConfidence] = field(default_factory=dict)
    summary: ConfidenceSummary | None = None
    as_of: datetime | None = None
    specs: dict[tuple[str, str], tuple[str, float | None]] = field(default_factory=dict)
    durations: dict[str, Decayed] = field(default_factory=dict)
    seq: int = 0
    applied_seq: int = 0
    touched: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)
    assembly: GraphAssembly = field(default_factory=GraphAssembly)
    quality: QualityGate = field(default_factory=QualityGate)
    # answers of pure functions of the (fixed) parameters, kept because the fold asks them again
    # and again: `next_confidence` per confidence and direction, `prediction_spans` per expected duration
    steps: tuple[dict[float, float], dict[float, float]] = field(default_factory=lambda: ({}, {}))
    spans: dict[float, tuple[timedelta, timedelta]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = {**CONFIDENCE_PARAMS, **self.params}
        c = self.params["initial"]
        self.summary = ConfidenceSummary(confidence=c, level=self.level(c), derived_level=self.level(c))

    def level(self, confidence: float) -> AutonomyLevel:
        """The autonomy level a confidence implies."""
        if confidence >= self.params["full_at"]:
            return "full"
        return "cautious" if confidence >= self.params["cautious_at"] else "supervised"


def prediction_key(graph_id: str, task_id: str) -> str:
    """KV key of a task's latest prediction."""
    return f"prediction.{token(graph_id)}.{token(task_id)}"


_KEPT = 4096  # at most this many answers kept per table (confidence moves on a small lattice)


def next_confidence(view: ConfidenceView, c: float, hit: bool) -> float:
    kept = view.steps[hit]
    if (out := kept.get(c)) is None:
        p = view.params
        out = round(min(1.0, max(0.0, c + (p["hit_step"] if hit else -p["miss_step"]))), 9)
        if len(kept) < _KEPT:
            kept[c] = out
    return out


def prediction_spans(view: ConfidenceView, expected: float) -> tuple[timedelta, timedelta]:
    """How long after the dispatch a prediction expects its finish, and its deadline."""
    if (spans := view.spans.get(expected)) is None:
        p = view.params
        spans = timedelta(seconds=expected), timedelta(seconds=expected * p["deadline_factor"] + p["deadline_grace_s"])
        if len(view.spans) < _KEPT:
            view.spans[expected] = spans
    return spans

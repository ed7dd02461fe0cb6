"""What the confidence view holds per KV key: a task's latest prediction (``prediction.<g>.<t>``),
a node's record (``node.<id>``) and the ``summary``; frozen structs replaced whole by
`projections.confidence.fold` and read by the decider, the watchdog, `why` and replay."""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.records import AutonomyLevel


class Prediction(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One attempt's predicted finish and how it turned out."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    dispatched_at: datetime
    expected_s: float
    expected_finish: datetime
    deadline: datetime
    status: str = "open"
    resolved_at: datetime | None = None
    actual_s: float | None = None
    reason: str = ""
    subject_seq: int = 0
    seq: int = 0


class NodeConfidence(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A node's prediction record and the inputs of its staleness."""

    node_id: str
    confidence: float
    hits: int = 0
    misses: int = 0
    last_seen: datetime | None = None
    seq: int = 0


class Careful(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Careful mode as the decider entered it (`CarefulModeEntered`): since when, why, and the
    observation interval the agents were asked for."""

    since: datetime
    confidence: float
    threshold: float
    observe_interval_s: float
    reason: str = ""


class ConfidenceSummary(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """System-wide confidence, the autonomy level it implies, and node staleness as of the latest event it took in."""

    confidence: float
    level: AutonomyLevel
    derived_level: AutonomyLevel
    pinned_level: AutonomyLevel | None = None
    pinned_by: str = ""
    hits: int = 0
    misses: int = 0
    voids: int = 0
    open: int = 0
    as_of: datetime | None = None
    applied_seq: int = 0
    staleness_s: dict[str, float] = {}
    seq: int = 0
    quality_threshold: float | None = None  # the quality threshold now (`projections.feedback`)
    quality_average: float | None = None  # the recent average quality it follows
    careful: Careful | None = None  # careful mode, while it lasts (`orchestrator.decision.careful`)
    careful_seq: int = 0  # sequence of the last careful-mode event: the guard of the next one

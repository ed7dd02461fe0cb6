"""The values of the node-scores view (`NodeView`, `TypeEstimate`, with each node's `TypeScore`
per task type) and the fold's record of who holds a task (`Holder`). The rules that build them
are `projections.node_scores.fold`."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.decay import Decayed
from projections.feedback import Streak


class TypeScore(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a node has shown for one task type: decayed efficiency and success rate."""

    efficiency: Decayed = Decayed()
    success: Decayed = Decayed()
    streak: Streak = Streak()  # failures in a row of this type here (`projections.feedback`)


class NodeView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One node: capacity, labels, last reading, liveness facts, held attempts and scores."""

    node_id: str
    slots: int = 1
    labels: dict[str, str] = {}
    hostname: str = ""
    registered_at: datetime | None = None
    last_seen: datetime | None = None
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    load1: float = 0.0
    active: tuple[str, ...] = ()
    completed: int = 0
    failed: int = 0
    seq: int = 0
    subject_seq: int = 0
    observations: int = 0
    running_tasks: int = 0
    cpu_count: int = 0
    memory_bytes: int = 0
    observe_interval_s: float | None = None
    lost: bool = False
    lost_at: datetime | None = None
    lost_reason: str = ""
    lost_count: int = 0
    draining: bool = False
    drain_reason: str = ""
    # Idle since (the end of its last attempt; None while it runs one or before any ended: then
    # since it registered), and the idle episode a scale-down was proposed for (`NodeScaleDownProposed`).
    idle_since: datetime | None = None
    scale_down_for: datetime | None = None
    scores: dict[str, TypeScore] = {}
    # Its fetches from the artifact store (decayed sums of bytes and of seconds, one sample per
    # completion that fetched): the transfer rate locality is scored by (`orchestrator.decision.transfer`).
    fetched_bytes: Decayed = Decayed()
    fetch_seconds: Decayed = Decayed()


class TypeEstimate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the system has learned of one task type's duration (successful runs)."""

    type: str
    duration: Decayed = Decayed()
    seq: int = 0
    # A run that timed out and whose retry succeeded taking longer: the timeout was too short
    # (`orchestrator.decision.timeouts` loosens the type's learned timeout to at least this).
    proven_s: float = 0.0
    short_timeouts: int = 0


class Holder(msgspec.Struct, frozen=True, gc=False):
    """The node and attempt that hold a task, and the duration expected at dispatch."""

    node_id: str
    attempt: int
    expected_s: float | None
    command: str = ""

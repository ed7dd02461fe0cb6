"""What the readiness view holds per KV key: a task's entry (``task.<g>.<t>``) and a graph's
(``graph.<g>``), frozen structs replaced whole by `projections.readiness.fold` and read by the decider,
`status`, `why` and replay."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.decay import Decayed
from schemas import records as rec

HELD = frozenset({"dispatched", "running"})


class TaskView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One task as the readiness view sees it; ``seq`` is the stream sequence it reflects."""

    graph_id: str
    task_id: str
    title: str = ""
    type: str = ""
    command: str
    state: rec.TaskState
    depends_on: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    ready_since: datetime | None = None
    node: str | None = None
    attempt: int = 0
    max_attempts: int = 1
    tier: int = 1
    estimate_s: float | None = None
    timeout_s: float | None = None
    priority: int | None = None
    labels: dict[str, str] = {}
    env: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    preflight: str | None = None
    last_seq: int = 0
    version: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    reason: str = ""
    seq: int = 0
    depth: int = 0
    rank_s: float = 0.0
    downstream: int = 0
    lost: int = 0
    awaiting_approval: bool = False
    approved_by: str | None = None
    preflight_state: str = ""
    failed_on: str | None = None  # node of the last failed or lost attempt (retry strategy input)
    failure_kind: str = ""  # "", "failure", "timeout" or "lost"
    outcome: str = ""  # of the last run attempt that ended: success, partial or failure
    origin: str = ""  # why a follow-up rule generated this task ("" for a task of the file)
    # The cache (`orchestrator.decision.actionkey`); all empty for a task that is not cacheable.
    outputs: tuple[rec.ArtifactRecord, ...] = ()  # of its success (an agent's, or the reused ones of a hit)
    action_form: dict[str, str] = {}  # its named form (without ``deps`` until its dependencies succeeded)
    action_key: str = ""  # set once it is ready: the key of the whole form
    cache_domain: str = ""  # where its success is recorded and looked up first
    cache_trusts: tuple[str, ...] = ()  # the other domains it may reuse from, in order
    cache_hit: str = ""  # "graph/task attempt N" of the success a cache hit reused
    # The data path: the task's declared outputs (paths and globs) and its graph's source manifest digest.
    output_decls: tuple[str, ...] = ()
    source_tree: str = ""


class Pause(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A recorded dispatch pause: since when, by whom ("" the decider) and why."""

    since: datetime
    by: str = ""
    reason: str = ""
    rate: float = 0.0


class Health(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Every graph's run completions together (KV ``health``): the overall decayed failure rate
    and the pause of every graph; the same fields a `GraphView` has for its own graph."""

    failures: Decayed = Decayed()
    pause: Pause | None = None
    pause_seq: int = 0
    seq: int = 0
    # The queueing episode a scale-up was proposed for (`NodeScaleUpProposed`: its ``queued_since``;
    # None once no task is ready), the proposal's reason, and its sequence (the guard of the next).
    scale_up: datetime | None = None
    scale_up_reason: str = ""
    scale_up_seq: int = 0


class GraphView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Totals of one graph (the article's 'Total tasks: 14 | Completed: 3 | ...' line)."""

    graph_id: str
    title: str = ""
    total: int = 0
    counts: dict[str, int] = {}
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    seq: int = 0
    depth: int = 0
    critical_path_s: float = 0.0
    cancelled_by: str | None = None
    rules: tuple[rec.FollowUpRule, ...] = ()
    generation_limit: int = 100
    generated: int = 0  # tasks its rules generated so far
    fired: tuple[str, ...] = ()  # "<rule>:<task>" triggers already acted on
    limit_reached: bool = False
    graph_version: int = 0  # events on the graph's own subjects (its write-side version)
    graph_seq: int = 0  # stream sequence of the last of them (the guard of the next)
    backlog_priority: int | None = None  # a backlog graph: nothing runs until the decider takes it
    backlog_taken: bool = False
    # The dispatch pause (`projections.readiness.health`): the decayed failure rate of its run
    # completions, and the pause the decider or a person recorded (`GraphPaused`/`GraphResumed`).
    failures: Decayed = Decayed()
    pause: Pause | None = None
    pause_seq: int = 0  # stream sequence of its last pause event (the guard of the next)

    @property
    def done(self) -> bool:
        """Every task is in a terminal state."""
        return sum(self.counts.get(s, 0) for s in rec.TERMINAL_STATES) == self.total

    def totals(self) -> dict[str, int]:
        """The article's totals: Total, Completed, Running (incl. dispatched), Ready, Blocked, Failed."""
        c = self.counts
        return {
            "total": self.total,
            "completed": c.get("succeeded", 0),
            "running": c.get("running", 0) + c.get("dispatched", 0),
            "ready": c.get("ready", 0),
            "blocked": c.get("pending", 0),
            "failed": c.get("failed", 0) + c.get("cancelled", 0),
        }


class CacheEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A reusable success (KV ``cache.<domain>.<key>``): written once, by the first agent's
    success (not partial) of a cacheable task under that key; revoked when its blobs fail to verify."""

    domain: str
    key: str
    graph_id: str
    task_id: str
    attempt: int
    node_id: str
    outputs: tuple[rec.ArtifactRecord, ...] = ()
    form: dict[str, str] = {}
    seq: int = 0
    revoked: str = ""  # why it was revoked ("": usable)


class CacheLast(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The last action key cached or reused for a task id in a domain (KV ``cachelast.<domain>.<task>``):
    what a miss compares the new form with to name the field that changed."""

    domain: str
    task_id: str
    key: str
    seq: int = 0


MIRROR_TYPES: dict[str, type[msgspec.Struct]] = {  # each readiness KV key's first token and its value's type
    "task": TaskView,
    "graph": GraphView,
    "health": Health,
    "cache": CacheEntry,
    "cachelast": CacheLast,
}

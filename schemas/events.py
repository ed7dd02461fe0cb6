"""Event types of niyantra: one tagged msgspec union per family (observations, decisions, completions).

Every event is frozen and keyword-only and carries its own id, ``occurred_at``, causation and
correlation ids and a schema version. Evolution rules (STYLE.md 13): new fields get defaults,
a field never changes type or meaning, and a tag is never reused.
"""

from __future__ import annotations

from datetime import datetime

from schemas.actions import (
    Alert,
    CarefulModeEntered,
    CarefulModeLeft,
    GraphPaused,
    GraphResumed,
    NodeScaleDownProposed,
    NodeScaleUpProposed,
)
from schemas.eventbase import Event
from schemas.records import (
    ArtifactRecord,
    AutonomyLevel,
    Candidate,
    FollowUpRule,
    GeneratedTask,
    Outcome,
    Phase,
    TaskSpec,
)

# --- observations -------------------------------------------------------------------------


class GraphSubmitted(Event, frozen=True, kw_only=True):
    """A task graph was accepted; it carries every task, so acceptance is one atomic write."""

    graph_id: str
    title: str = ""
    tasks: tuple[TaskSpec, ...]
    source: str = ""
    submitted_by: str = ""
    digest: str = ""
    parts: int = 1
    rules: tuple[FollowUpRule, ...] = ()
    generation_limit: int = 100
    backlog_priority: int | None = None  # set: the graph waits in the backlog until the decider takes it
    # The graph's source tree (SourceManifest): its digest, and its files at their workspace paths
    # (sorted by path, split across the parts like the tasks); every task's workspace gets them.
    source_tree: str = ""
    source_files: tuple[ArtifactRecord, ...] = ()
    filesets: dict[str, tuple[str, ...]] = {}  # named input lists a task's ``@name`` input stands for
    # The content-addressed cache (`orchestrator.decision.actionkey`): off for the whole graph
    # (``cache = false``) or for the tasks listed; entries are written to and read from
    # ``cache_domain`` ("": the graph's ``source``) and read from the domains it trusts too.
    cache: bool = True
    uncached: tuple[str, ...] = ()
    cache_domain: str = ""
    cache_trusts: tuple[str, ...] = ()


class GraphTasksAdded(Event, frozen=True, kw_only=True):
    """Part ``part`` (1 … parts-1) of a graph too big for one message, in the same atomic write.

    A graph is complete once its last part is in; views take it whole from there
    (`orchestrator.graphs.submission.GraphAssembly`).
    """

    graph_id: str
    part: int
    tasks: tuple[TaskSpec, ...]
    source_files: tuple[ArtifactRecord, ...] = ()  # the source tree's files after the earlier parts'


class NodeRegistered(Event, frozen=True, kw_only=True):
    """A node agent announced itself with its capacity and labels."""

    node_id: str
    slots: int
    labels: dict[str, str] = {}
    hostname: str = ""
    cpu_count: int = 0
    memory_bytes: int = 0
    agent_version: str = ""
    observe_interval_s: float | None = None


class NodeObserved(Event, frozen=True, kw_only=True):
    """A periodic reading of a node's load."""

    node_id: str
    cpu_percent: float
    memory_percent: float
    load1: float
    running_tasks: int
    draining: bool = False
    observe_interval_s: float | None = None  # the interval the agent observes at now (shorter in careful mode)


# --- decisions ----------------------------------------------------------------------------


class TaskDispatched(Event, frozen=True, kw_only=True):
    """The decider sent a task attempt to a node, with everything it used to decide."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    command: str
    timeout_s: float | None = None
    expected_duration_s: float | None = None
    candidates: tuple[Candidate, ...] = ()
    timeout_rule: str = ""  # a learned timeout (`orchestrator.decision.timeouts`): how it was computed
    confidence: float = 1.0
    autonomy: str = "full"
    policy: str = ""
    world_hash: str = ""
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    now: datetime | None = None
    phase: Phase = "run"
    strategy: str = ""
    env: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    cache_miss: str = ""  # a cacheable task: why the cache had nothing to reuse (the field that changed, or "no entry")
    action_key: str = ""  # a cacheable task: its action key (the agent's success records its outputs under it)
    # The data path (`node_agent.artifacts.stage`, `.publish`): the graph's source manifest (a blob
    # named by its digest, stored at submit), the task's declared outputs (collected and stored
    # after a successful run) and its dependencies' stored outputs (laid out at their paths first).
    source_tree: str = ""
    outputs: tuple[str, ...] = ()
    dep_outputs: tuple[ArtifactRecord, ...] = ()


class TaskCacheHit(Event, frozen=True, kw_only=True):
    """The decider reused an earlier success instead of dispatching: the ready task's action key
    matched a cache entry of its trust domain (or one it trusts) whose blobs are in the store.
    A decision like a dispatch (view sequences, ``now``, decider), re-run by ``replay --check``;
    it completes the task with the reused outputs."""

    graph_id: str
    task_id: str
    key: str
    domain: str = ""  # the domain of the entry reused (the task's own, or one its graph trusts)
    reused_graph: str = ""
    reused_task: str = ""
    reused_attempt: int = 0
    reason: str = ""
    outputs: tuple[ArtifactRecord, ...] = ()
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    policy: str = ""
    now: datetime | None = None


class CacheEntryRevoked(Event, frozen=True, kw_only=True):
    """A cache entry's blobs did not verify (missing from the store, or a digest that no longer
    matches): the entry is never used again; a later success of the same key records a new one."""

    domain: str
    key: str
    reason: str
    missing: tuple[str, ...] = ()  # the digests that did not verify
    graph_id: str = ""  # the task whose hit was refused (for explain)
    task_id: str = ""


class TasksGenerated(Event, frozen=True, kw_only=True):
    """The decider added tasks to a live graph by its follow-up rules (a decision: it records
    the view sequences and ``now`` it used, so replay re-runs it)."""

    graph_id: str
    generated: tuple[GeneratedTask, ...]
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    now: datetime | None = None


class GenerationLimitReached(Event, frozen=True, kw_only=True):
    """A graph generated as many tasks as its limit allows; its rules generate no more."""

    graph_id: str
    limit: int
    generated: int
    reason: str
    view_seqs: dict[str, int] = {}
    now: datetime | None = None


class BacklogItemTaken(Event, frozen=True, kw_only=True):
    """The decider made a backlog graph live (nothing was ready and autonomy was full): generated
    work, chosen by priority, then age; it records the view sequences and ``now`` it used."""

    graph_id: str
    priority: int
    tasks: int
    reason: str
    view_seqs: dict[str, int] = {}
    decider_id: str = ""
    decider_version: str = ""
    now: datetime | None = None


# --- completions --------------------------------------------------------------------------


class TaskStarted(Event, frozen=True, kw_only=True):
    """A node began running a dispatched attempt."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    pid: int | None = None


class TaskCompleted(Event, frozen=True, kw_only=True):
    """An attempt ended: success, partial or failure, with what the feedback loop learns from."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    outcome: Outcome
    exit_code: int | None = None
    duration_s: float = 0.0
    expected_duration_s: float | None = None
    retries: int = 0
    quality: float | None = None
    error: str = ""
    output_tail: str = ""
    phase: Phase = "run"
    scope_violations: tuple[str, ...] = ()
    log_subject: str = ""
    retryable: bool = True
    outputs: tuple[ArtifactRecord, ...] = ()  # the declared outputs as stored (success only)
    # What the agent fetched from the artifact store before the run (its local cache's misses):
    # the node-scores view learns the node's transfer rate from them (`orchestrator.decision.transfer`).
    fetched_bytes: int = 0
    fetch_seconds: float = 0.0


class TaskLost(Event, frozen=True, kw_only=True):
    """An attempt's process is gone with its node or agent; the task may run again as a new attempt."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    reason: str


# --- human and clock facts ----------------------------------------------------------------


class TaskCancelled(Event, frozen=True, kw_only=True):
    """A person (or a graph cancel) stopped a task; a running attempt is killed by its agent."""

    graph_id: str
    task_id: str
    by: str
    reason: str = ""


class GraphCancelled(Event, frozen=True, kw_only=True):
    """A person cancelled every unfinished task of a graph."""

    graph_id: str
    by: str
    reason: str = ""


class TaskApproved(Event, frozen=True, kw_only=True):
    """A person approved a tier-3 task awaiting approval."""

    graph_id: str
    task_id: str
    by: str
    reason: str = ""


class TaskRejected(Event, frozen=True, kw_only=True):
    """A person rejected a tier-3 task awaiting approval; it ends as cancelled."""

    graph_id: str
    task_id: str
    by: str
    reason: str = ""


class NodeLost(Event, frozen=True, kw_only=True):
    """The watchdog saw no observation from a node for its lease; its attempts are lost."""

    node_id: str
    last_seen: datetime | None = None
    reason: str


class NodeDrainRequested(Event, frozen=True, kw_only=True):
    """A node finishes what it runs and takes no more work."""

    node_id: str
    by: str
    reason: str = ""


class PredictionExpired(Event, frozen=True, kw_only=True):
    """The watchdog saw a dispatch's expected finish time pass without a completion (a miss)."""

    graph_id: str
    task_id: str
    node_id: str
    attempt: int
    deadline: datetime


class AutonomyChanged(Event, frozen=True, kw_only=True):
    """The autonomy level changed (from confidence, or a person's pause/resume), with the reason."""

    level: AutonomyLevel
    previous: AutonomyLevel | None = None
    confidence: float | None = None
    by: str = ""
    reason: str


class Unschedulable(Event, frozen=True, kw_only=True):
    """A ready task could not be dispatched for longer than the threshold; says why."""

    graph_id: str
    task_id: str
    reason: str
    since: datetime | None = None


# --- actions of the decision loop besides dispatch (`orchestrator.decision.actions`) -------------


Observation = GraphSubmitted | NodeRegistered | NodeObserved
Decision = TaskDispatched | TaskCacheHit
Completion = TaskStarted | TaskCompleted
AnyEvent = (
    GraphSubmitted
    | GraphTasksAdded
    | NodeRegistered
    | NodeObserved
    | TaskDispatched
    | TaskStarted
    | TaskCompleted
    | TaskLost
    | TaskCancelled
    | GraphCancelled
    | TaskApproved
    | TaskRejected
    | NodeLost
    | NodeDrainRequested
    | PredictionExpired
    | AutonomyChanged
    | Unschedulable
    | Alert
    | TasksGenerated
    | GenerationLimitReached
    | BacklogItemTaken
    | TaskCacheHit
    | CacheEntryRevoked
    | GraphPaused
    | GraphResumed
    | CarefulModeEntered
    | CarefulModeLeft
    | NodeScaleDownProposed
    | NodeScaleUpProposed
)

TaskEvent = TaskDispatched | TaskStarted | TaskCompleted | TaskCacheHit

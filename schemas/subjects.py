"""Subject, stream, consumer, KV bucket and header names: the only place they are spelled.

Subjects follow ``ev.<kind>.<id>.<EventName>[.<extra>]``. A task's id is qualified by its
graph and so spans two tokens (``ev.task.<graph>.<task>.Dispatched.<node>``): task ids are
unique within a graph, not across graphs, and ``ev.task.<graph>.>`` selects one graph.
Graph and task ids appear in subjects and keys as `schemas.ids.token` of the id (an id of
``A-Z a-z 0-9 _ -`` as itself, others escaped reversibly); node ids must be plain tokens.
"""

from __future__ import annotations

import re

from schemas.errors import InvalidId
from schemas.ids import from_token, token

STREAM = "EVENTS"
ROOT = "ev"
STREAM_SUBJECTS = (f"{ROOT}.>",)

# Read-model buckets. Views are derived from the log and rebuilt from it, so they live in
# memory storage: no per-write fsync (DESIGN.md, performance budget).
KV_READINESS = "view_readiness"
KV_NODE_SCORES = "view_node_scores"
KV_CONFIDENCE = "view_confidence"
VIEW_BUCKETS = (KV_READINESS, KV_NODE_SCORES, KV_CONFIDENCE)
CHECKPOINT_KEY = "_checkpoint"

# What the instance says about itself (schemas/instance.py): not derived from the log, written
# once when a process starts, so file storage; key ``archive``: where the archive projector writes.
KV_INSTANCE = "niyantra_instance"
INSTANCE_ARCHIVE_KEY = "archive"

AGENT_CONSUMER_PREFIX = "agent-"

# Task output lives in its own stream (EVENTS denies delete; logs may be aged out): one message
# per attempt and phase on ``log.<graph>.<task>.<attempt>.<phase>``, redacted and capped.
LOG_STREAM = "LOGS"
LOG_ROOT = "log"

# Build artifacts: one JetStream Object Store bucket, each blob named by the lowercase hex SHA-256
# of its content (stored once however many tasks produce it). nats-py keeps a bucket in the stream
# ``OBJ_<bucket>`` with chunks on ``$O.<bucket>.C.<nuid>`` and one metadata message per object on
# ``$O.<bucket>.M.<base64 name>`` (nats/js/object_store.py); the subjects are spelled here for the
# server's permissions.
ARTIFACT_BUCKET = "artifacts"
ARTIFACT_STREAM = f"OBJ_{ARTIFACT_BUCKET}"
ARTIFACT_CHUNKS = f"$O.{ARTIFACT_BUCKET}.C"
ARTIFACT_META = f"$O.{ARTIFACT_BUCKET}.M"

# Namespaces the eventsourcing recorders use beside an event root ``ev``: tracking records on
# ``trk.ev.<application>`` (same stream, so events and tracking commit in one batch) and
# snapshots on ``snap.ev.<id>`` in the stream ``<stream>_SNAPSHOTS``.
TRACKING_ROOT = "trk"
SNAPSHOT_ROOT = "snap"
SNAPSHOT_STREAM_SUFFIX = "_SNAPSHOTS"

# Headers on every stored event; the payload is the encoded event itself.
HDR_ORIGINATOR_ID = "Niyantra-Originator-Id"
HDR_ORIGINATOR_VERSION = "Niyantra-Originator-Version"
HDR_TOPIC = "Niyantra-Topic"
HDR_MSG_ID = "Nats-Msg-Id"
HDR_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
HDR_BATCH_ID = "Nats-Batch-Id"
HDR_BATCH_SEQ = "Nats-Batch-Sequence"
HDR_BATCH_COMMIT = "Nats-Batch-Commit"

# JetStream API error codes we translate into our own errors.
ERR_WRONG_LAST_SEQUENCE = 10071
ERR_BATCH_TOO_LARGE = 10199
ERR_MAX_BYTES = 10077  # a stream with discard-new at its max_bytes (a full artifact bucket)
MAX_ATOMIC_BATCH = 1000

_TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$")


def check_id(what: str, value: str) -> str:
    """Return ``value`` if it is safe as one subject token, else raise `InvalidId`."""
    if not isinstance(value, str) or not value:
        raise InvalidId(what, str(value), "it is empty")
    if not _TOKEN.match(value):
        raise InvalidId(
            what,
            value,
            "use 1-128 characters from A-Z a-z 0-9 _ - (no dots, spaces or wildcards)",
        )
    return value


def is_safe_id(value: str) -> bool:
    """Tell whether ``value`` is safe as one subject token."""
    return isinstance(value, str) and bool(_TOKEN.match(value))


def graph_aggregate(graph_id: str) -> str:
    """Aggregate id (subject stem after the root) of a graph."""
    return f"graph.{token(graph_id)}"


def task_aggregate(graph_id: str, task_id: str) -> str:
    """Aggregate id (subject stem after the root) of one task of a graph."""
    return f"task.{token(graph_id)}.{token(task_id)}"


def backlog_aggregate(item_id: str) -> str:
    """Aggregate id (subject stem after the root) of one backlog item."""
    return f"backlog.{token(item_id)}"


BACKLOG_FILTER = f"{ROOT}.backlog.>"


def node_aggregate(node_id: str) -> str:
    """Aggregate id (subject stem after the root) of a node."""
    return f"node.{node_id}"


def subject(aggregate: str, event_name: str, extra: str | None = None) -> str:
    """Full subject of an event of ``aggregate``."""
    tail = f".{extra}" if extra else ""
    return f"{ROOT}.{aggregate}.{event_name}{tail}"


def aggregate_filter(aggregate: str) -> str:
    """Wildcard subject that selects every event of one aggregate."""
    return f"{ROOT}.{aggregate}.>"


def dispatch_filter(node_id: str) -> str:
    """Subject filter of the dispatches addressed to one node."""
    return f"{ROOT}.task.*.*.TaskDispatched.{node_id}"


# Task results name the reporting node as the subject's last token (like a dispatch), so the
# server's permissions let an agent report for its own node only (orchestrator/runtime/auth.py).
RESULT_EVENTS = ("TaskStarted", "TaskCompleted", "TaskLost")


def result_filter(event_name: str, node_id: str) -> str:
    """Subject filter of one kind of task result reported for ``node_id``."""
    return f"{ROOT}.task.*.*.{event_name}.{node_id}"


def log_subject(graph_id: str, task_id: str, attempt: int, phase: str = "run") -> str:
    """Subject of the stored output of one attempt (and phase) of a task."""
    return f"{LOG_ROOT}.{token(graph_id)}.{token(task_id)}.{attempt}.{phase}"


def cancel_filters() -> tuple[str, str]:
    """Subjects an agent follows to stop running work: task cancels and graph cancels."""
    return f"{ROOT}.task.*.*.TaskCancelled", f"{ROOT}.graph.*.GraphCancelled"


def graph_event_filter(event_name: str) -> str:
    """Subjects of one graph event kind of every graph (``ev.graph.*.GraphSubmitted``)."""
    return f"{ROOT}.graph.*.{event_name}"


def drain_subject(node_id: str) -> str:
    """Subject of a node's drain requests."""
    return f"{ROOT}.{node_aggregate(node_id)}.NodeDrainRequested"


def agent_consumer(node_id: str) -> str:
    """Durable consumer name of a node's dispatch queue."""
    return f"{AGENT_CONSUMER_PREFIX}{node_id}"


def readiness_key(graph_id: str, task_id: str) -> str:
    """KV key of one task in the readiness view."""
    return f"task.{token(graph_id)}.{token(task_id)}"


def task_of_key(key: str) -> tuple[str, str]:
    """The (graph id, task id) of a readiness key ``task.<graph>.<task>``."""
    _, g, t = key.split(".")
    return from_token(g), from_token(t)


def id_of_token(subject_or_key: str, index: int) -> str:
    """The graph or task id at token ``index`` of a subject or key."""
    return from_token(subject_or_key.split(".")[index])


def graph_key(graph_id: str) -> str:
    """KV key of a graph's totals in the readiness view."""
    return f"graph.{token(graph_id)}"


def node_key(node_id: str) -> str:
    """KV key of one node in the node-scores view."""
    return f"node.{node_id}"


def domain_token(domain: str) -> str:
    """A cache trust domain (any string: a branch, a path) as one subject token: 16 hex of its SHA-256."""
    import hashlib

    return hashlib.sha256(domain.encode()).hexdigest()[:16]


def cache_key(domain: str, key: str) -> str:
    """KV key (readiness view) of the cache entry of action key ``key`` in trust domain ``domain``."""
    return f"cache.{domain_token(domain)}.{key}"


def cache_last_key(domain: str, task_id: str) -> str:
    """KV key (readiness view) of the last action key cached or reused for a task id in a domain."""
    return f"cachelast.{domain_token(domain)}.{domain_token(task_id)}"


CAREFUL_AGGREGATE = "system.careful"  # careful mode's events: guarded by its subject tree, followed by every agent
SCALING_AGGREGATE = "system.scaling"  # scale-up proposals: guarded by its subject tree, followed by `up --autoscale`


_SYSTEM = {  # the system-wide events' aggregates, by event name
    "AutonomyChanged": "system.autonomy",
    "Alert": "system.alert",
    "CarefulModeEntered": CAREFUL_AGGREGATE,
    "CarefulModeLeft": CAREFUL_AGGREGATE,
    "NodeScaleUpProposed": SCALING_AGGREGATE,
}


def careful_subjects() -> tuple[str, str]:
    """The subjects of careful mode's two events (entered, left): an agent reads the last of each."""
    return f"{ROOT}.{CAREFUL_AGGREGATE}.CarefulModeEntered", f"{ROOT}.{CAREFUL_AGGREGATE}.CarefulModeLeft"


def pause_aggregate(graph_id: str) -> str:
    """Aggregate of a graph's dispatch pause (``""``: the pause of every graph): its events are
    guarded by its subject tree, so two deciders never both pause or resume it."""
    return f"pause.graph.{token(graph_id)}" if graph_id else "pause.all"


def route(event: object) -> tuple[str, str]:
    """Aggregate id and subject of an event.

    Only facts that change a task's write-side state live under ``ev.task.<g>.<t>``: an agent's
    completion is guarded by that subject tree's last sequence, so clock signals about a task
    (a prediction expired, a task unschedulable) have their own roots and never fence it.
    """
    from schemas import actions as act
    from schemas import events as ev

    name = type(event).__name__
    match event:
        case (
            ev.GraphSubmitted(graph_id=g)
            | ev.GraphTasksAdded(graph_id=g)
            | ev.GraphCancelled(graph_id=g)
            | ev.TasksGenerated(graph_id=g)  # generated work is on the graph's own subjects, guarded by them
            | ev.GenerationLimitReached(graph_id=g)
        ):
            agg = graph_aggregate(g)
        case ev.BacklogItemTaken(graph_id=g):
            agg = backlog_aggregate(g)
        case (
            ev.NodeRegistered(node_id=n)
            | ev.NodeObserved(node_id=n)
            | ev.NodeLost(node_id=n)
            | ev.NodeDrainRequested(node_id=n)
            | act.NodeScaleDownProposed(node_id=n)
        ):
            agg = node_aggregate(n)
        case (
            ev.TaskDispatched(graph_id=g, task_id=t, node_id=n)
            | ev.TaskStarted(graph_id=g, task_id=t, node_id=n)
            | ev.TaskCompleted(graph_id=g, task_id=t, node_id=n)
            | ev.TaskLost(graph_id=g, task_id=t, node_id=n)
        ):
            agg = task_aggregate(g, t)
            return agg, subject(agg, name, n)  # the node in the subject: the server checks who writes it
        case (
            ev.TaskCancelled(graph_id=g, task_id=t)
            | ev.TaskApproved(graph_id=g, task_id=t)
            | ev.TaskRejected(graph_id=g, task_id=t)
            | ev.TaskCacheHit(graph_id=g, task_id=t)  # it completes the task: guarded like a dispatch
        ):
            agg = task_aggregate(g, t)
        case ev.CacheEntryRevoked(domain=d):
            agg = f"cache.{domain_token(d)}"
        case ev.PredictionExpired(graph_id=g, task_id=t):
            agg = f"prediction.{token(g)}.{token(t)}"
        case ev.Unschedulable(graph_id=g, task_id=t):
            agg = f"unschedulable.{token(g)}.{token(t)}"
        case act.GraphPaused(graph_id=g) | act.GraphResumed(graph_id=g):
            agg = pause_aggregate(g)
        case (
            ev.AutonomyChanged()
            | act.Alert()
            | act.CarefulModeEntered()
            | act.CarefulModeLeft()
            | act.NodeScaleUpProposed()
        ):
            agg = _SYSTEM[name]
        case _:
            raise TypeError(f"no subject for {name}")
    return agg, subject(agg, name)

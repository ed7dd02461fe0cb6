"""The records events carry (a task as declared, a follow-up rule's selector, a candidate node with
its score, a generated task, an artifact, a source manifest) and the task states and outcomes they name.
Imports nothing of niyantra."""

from __future__ import annotations

from typing import Literal

import msgspec

TaskState = Literal["pending", "ready", "dispatched", "running", "succeeded", "failed", "cancelled"]


Outcome = Literal["success", "partial", "failure"]


Phase = Literal["run", "preflight"]


AutonomyLevel = Literal["full", "cautious", "supervised"]


TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class TaskSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One task of a submitted graph, as the user declared it."""

    id: str
    command: str
    depends_on: tuple[str, ...] = ()
    title: str = ""
    type: str = ""
    estimate_s: float | None = None
    timeout_s: float | None = None
    max_attempts: int = 1
    tier: int = 1
    priority: int | None = None
    labels: dict[str, str] = {}
    preflight: str | None = None
    scope: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    # Workspace-relative paths or globs (``*``, ``?``, ``[...]``, ``**``): what the task reads
    # (source files, other tasks' outputs; ``@name`` stands for the graph's fileset ``name``) and
    # what it writes for its dependents (stored and laid out for them).
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


class TaskSelector(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Which tasks a follow-up rule is about: every given part must match ("" / {} match all).

    ``id`` is a glob (``T-00*``); ``depends_on`` names a task the matching task must depend on
    (``{task}`` is the triggering task).
    """

    type: str = ""
    id: str = ""
    labels: dict[str, str] = {}
    depends_on: str = ""


class FollowUpRule(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """When a task matching ``when`` ends with an outcome in ``on``, generate ``task`` (a template
    whose id, title, command and depends_on may use ``{task}``, ``{title}``, ``{type}``,
    ``{outcome}``, ``{graph}``, ``{rule}`` and ``{n}``), unless a task matching ``unless`` exists."""

    name: str
    when: TaskSelector = TaskSelector()
    on: tuple[str, ...] = ("success",)
    unless: TaskSelector | None = None
    task: TaskSpec
    before: tuple[str, ...] = ()  # tasks that also wait for the generated one (if not released yet)


class Candidate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One option the decider considered, with its score and the reason in words."""

    node_id: str
    score: float
    reason: str
    eligible: bool = True


class GeneratedTask(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One task a follow-up rule generated, with the rule, the trigger and the reason in words."""

    spec: TaskSpec
    rule: str
    trigger_task: str
    trigger_outcome: str
    trigger_seq: int
    reason: str
    before: tuple[str, ...] = ()  # tasks to hold back until this one succeeds (see readiness)


class ArtifactRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One stored file: its path in the workspace, the SHA-256 of its content, its size and mode.

    ``digest`` is the lowercase hex SHA-256 of the content and the blob's name in the artifact
    store (one blob per content, however many records name it). ``path`` is relative to the
    workspace, ``/``-separated and normalized (no ``.``/``..`` parts). ``mode`` is 0o755 when the
    file is executable and 0o644 otherwise (like git's file modes: a umask never changes it).
    """

    path: str
    digest: str
    size: int = 0
    mode: int = 0o644


class SourceManifest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A source tree as stored: every regular file's workspace path, digest, size and mode, sorted by path.

    Its identity is `schemas.codec.manifest_digest`: the SHA-256 of its canonical JSON encoding.
    Folders are implied by the paths (an empty folder is not recorded).
    """

    files: tuple[ArtifactRecord, ...] = ()

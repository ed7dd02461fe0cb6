"""Errors raised by the orchestrator package.

OrchestratorError
 ├── GraphFileError            a graph file that cannot be accepted (names file, task, field)
 ├── SourceTreeError           a source directory that cannot be stored (names the path and why)
 ├── NinjaFileError            a Ninja file that cannot be read or imported (names file, line, problem)
 ├── InvariantViolation        a command refused by a write-side rule (task not ready, stale attempt, ...)
 ├── ConcurrencyConflict       an append whose expected aggregate sequence was stale
 │    └── DuplicateAppend      an append JetStream already holds (same Nats-Msg-Id)
 ├── EventLogUnavailable       NATS / JetStream could not be reached or answered an error
 ├── BatchTooLarge             an atomic commit over JetStream's batch limit
 └── ServerError               the embedded nats-server could not be started or stopped
"""

from __future__ import annotations

from collections.abc import Sequence


class OrchestratorError(Exception):
    """Root of every error raised by `orchestrator`."""


class GraphFileError(OrchestratorError):
    """A graph file with one or more problems; nothing was written."""

    def __init__(self, path: str, problems: Sequence[object]) -> None:
        self.path = path
        self.problems = list(problems)  # `orchestrator.graphs.problem.Problem`s (or plain strings)
        super().__init__("; ".join(map(str, problems)) if problems else f"{path}: invalid graph")


class ConcurrencyConflict(OrchestratorError):
    """The aggregate moved on since the writer last saw it; the append was rejected."""

    def __init__(self, subject: str, expected_seq: int | None, detail: str) -> None:
        self.subject = subject
        self.expected_seq = expected_seq
        self.detail = detail
        super().__init__(f"conflict appending {subject} (expected last seq {expected_seq}): {detail}")


class DuplicateAppend(ConcurrencyConflict):
    """JetStream already holds a message with this Nats-Msg-Id; nothing new was written."""

    def __init__(self, subject: str, seq: int) -> None:
        self.seq = seq
        super().__init__(subject, None, f"duplicate of the message at seq {seq}")


class EventLogUnavailable(OrchestratorError):
    """The event log could not be reached or returned an unexpected error."""


class BatchTooLarge(OrchestratorError):
    """An atomic commit holds more messages than JetStream accepts in one batch."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"an atomic commit of {size} messages exceeds the limit of {limit}")


class ServerError(OrchestratorError):
    """The embedded nats-server failed to start, or is not installed."""


class InvariantViolation(OrchestratorError):
    """A command that would break a write-side invariant (names the task and the rule)."""


class SourceTreeError(OrchestratorError):
    """A file of a graph's source directory that cannot be recorded (a symlink out, a fifo, unreadable)."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"source {path}: {why}")


class NinjaFileError(OrchestratorError):
    """A Ninja build file that cannot be parsed or turned into a graph; names the file and line."""

    def __init__(self, file: str, line: int | None, why: str) -> None:
        self.file = file
        self.line = line
        self.why = why
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {why}")

"""Errors raised by the node agent.

AgentError
 ├── TaskLaunchFailed     the task's process could not be started at all
 ├── BadAgentSetting      an agent option is invalid (names the option and the value)
 ├── LogStoreUnavailable  the LOGS stream cannot be reached or written
 └── LogNotFound          no stored output for that task, attempt and phase
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised by `node_agent`."""


class TaskLaunchFailed(AgentError):
    """The command could not be started (missing shell, bad workdir, ...)."""


class BadAgentSetting(AgentError):
    """An agent option is invalid."""

    def __init__(self, option: str, value: object, why: str) -> None:
        self.option, self.value, self.why = option, value, why
        super().__init__(f"agent option {option}={value!r}: {why}")


class LogStoreUnavailable(AgentError):
    """The LOGS stream cannot be reached or written."""


class LogNotFound(AgentError):
    """No output is stored for that run."""

    def __init__(self, graph_id: str, task_id: str, attempt: int | None, phase: str) -> None:
        self.graph_id, self.task_id, self.attempt, self.phase = graph_id, task_id, attempt, phase
        which = "any attempt" if attempt is None else f"attempt {attempt}"
        extra = "" if phase == "run" else f" ({phase})"
        super().__init__(
            f"no stored output for task {graph_id}/{task_id}, {which}{extra} (a run that printed nothing stores none)"
        )

"""Errors raised by the node agent.

AgentError
 └── TaskLaunchFailed     the task's process could not be started at all
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised by `node_agent`."""


class TaskLaunchFailed(AgentError):
    """The command could not be started (missing shell, bad workdir, ...)."""

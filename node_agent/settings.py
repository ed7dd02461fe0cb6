"""`AgentSettings`: one node agent's configuration (node id, server URL, slots, labels, the
observation interval, the dispatch ack wait and the execution settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node_agent.execution import ExecutionSettings

ACK_WAIT_S = 5.0  # a dispatch neither acked nor beaten this long is delivered again (see `Agent.handle`)


@dataclass(frozen=True)
class AgentSettings:
    """One agent's configuration, built at the edge from flags and environment."""

    node_id: str
    url: str = "nats://127.0.0.1:4222"
    slots: int = 2
    labels: dict[str, str] = field(default_factory=dict)
    observe_interval_s: float = 5.0
    ack_wait_s: float = ACK_WAIT_S
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)

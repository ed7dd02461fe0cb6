"""Task output in JetStream: the stream ``LOGS``, one message per attempt and phase.

A subject per run, ``log.<graph>.<task>.<attempt>.<phase>``, holds the redacted, capped output
(≤ 64 KiB by default, well under a message's limit, so a plain stream is enough and an object
store's chunking buys nothing). The stream is separate from EVENTS because logs are bulky and
may be aged out (``max_age``, default 30 days) while events are kept forever, and EVENTS
denies deletes. ``TaskCompleted.log_subject`` names the subject of its run; a run that printed
nothing stores no message (its ``log_subject`` is ""), so a no-op task costs no LOGS write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from node_agent.errors import LogNotFound, LogStoreUnavailable
from orchestrator.runtime.connection import replicas as default_replicas
from schemas import subjects as S
from schemas.ids import token

DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0
HDR_NODE = "Niyantra-Node"
HDR_EXIT = "Niyantra-Exit-Code"


@dataclass(frozen=True)
class StoredLog:
    """One run's output as stored."""

    subject: str
    attempt: int
    phase: str
    node_id: str
    exit_code: str
    data: bytes


class LogStore:
    """Put and get task output on the LOGS stream."""

    def __init__(self, nc: Any, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.js = nc.jetstream()
        self.max_age_s = max_age_s

    async def ensure_stream(self, *, replicas: int | None = None) -> None:
        """Create the LOGS stream if it is missing (idempotent)."""
        config = StreamConfig(
            name=S.LOG_STREAM,
            subjects=[f"{S.LOG_ROOT}.>"],
            storage=StorageType.FILE,
            max_age=self.max_age_s,
            max_msgs_per_subject=1,
            discard=DiscardPolicy.OLD,
            allow_direct=True,
            num_replicas=replicas or default_replicas(),
        )
        try:
            await self.js.stream_info(S.LOG_STREAM)
        except nats.js.errors.NotFoundError:
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as e:
                if getattr(e, "err_code", None) != 10058:  # created meanwhile by another agent
                    raise LogStoreUnavailable(f"cannot create stream {S.LOG_STREAM}: {e}") from e
        except (nats.errors.Error, OSError) as e:
            raise LogStoreUnavailable(f"cannot reach JetStream: {e}") from e

    async def put(self, subject: str, data: bytes, *, node_id: str, exit_code: int | None) -> None:
        """Store one run's output on ``subject`` (a retry of the same run replaces it)."""
        headers = {HDR_NODE: node_id, HDR_EXIT: "" if exit_code is None else str(exit_code)}
        try:
            await self.js.publish(subject, data, stream=S.LOG_STREAM, headers=headers)
        except (nats.errors.Error, OSError) as e:
            raise LogStoreUnavailable(f"cannot store the log on {subject}: {e}") from e

    async def get(self, graph_id: str, task_id: str, attempt: int | None = None, phase: str = "run") -> StoredLog:
        """The output of one attempt (the latest stored when ``attempt`` is None)."""
        if attempt is None:
            attempt = await self.latest_attempt(graph_id, task_id, phase)
        subject = S.log_subject(graph_id, task_id, attempt, phase)
        try:
            msg = await self.js.get_last_msg(S.LOG_STREAM, subject, direct=True)
        except nats.js.errors.NotFoundError as e:
            raise LogNotFound(graph_id, task_id, attempt, phase) from e
        except (nats.errors.Error, OSError) as e:
            raise LogStoreUnavailable(f"cannot read {subject}: {e}") from e
        headers = msg.headers or {}
        return StoredLog(subject, attempt, phase, headers.get(HDR_NODE, ""), headers.get(HDR_EXIT, ""), msg.data or b"")

    async def latest_attempt(self, graph_id: str, task_id: str, phase: str = "run") -> int:
        """The highest attempt with stored output for a task."""
        try:
            info = await self.js.stream_info(
                S.LOG_STREAM, subjects_filter=f"{S.LOG_ROOT}.{token(graph_id)}.{token(task_id)}.*.{phase}"
            )
        except nats.js.errors.NotFoundError as e:
            raise LogNotFound(graph_id, task_id, None, phase) from e
        except (nats.errors.Error, OSError) as e:
            raise LogStoreUnavailable(f"cannot list logs of {graph_id}/{task_id}: {e}") from e
        attempts = [int(s.split(".")[3]) for s in (info.state.subjects or {})]
        if not attempts:
            raise LogNotFound(graph_id, task_id, None, phase)
        return max(attempts)

    async def tasks_named(self, task_id: str) -> list[str]:
        """Graph ids that have stored output for a task called ``task_id``."""
        try:
            info = await self.js.stream_info(S.LOG_STREAM, subjects_filter=f"{S.LOG_ROOT}.*.{token(task_id)}.>")
        except nats.js.errors.NotFoundError:
            return []
        except (nats.errors.Error, OSError) as e:
            raise LogStoreUnavailable(f"cannot list logs: {e}") from e
        return sorted({S.id_of_token(s, 1) for s in (info.state.subjects or {})})

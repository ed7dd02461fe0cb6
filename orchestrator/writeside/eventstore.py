"""The eventsourcing persistence module (``PERSISTENCE_MODULE=orchestrator.writeside.eventstore``):
its `Factory` builds the JetStream recorders of `orchestrator.writeside.recorders`, sharing one
connection, configured from the environment.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar, cast

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import resolve_topic, strtobool

from orchestrator.writeside.bridge import SyncNats
from orchestrator.writeside.recorders import (
    SNAPSHOT_ROOT,
    SNAPSHOT_STREAM_SUFFIX,
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamRecorder,
    JetStreamTrackingRecorder,
)
from orchestrator.writeside.storedevents import translated
from schemas import subjects as S

if TYPE_CHECKING:
    from eventsourcing.utils import Environment, EnvType

R = TypeVar("R", bound=JetStreamRecorder)


class Factory(InfrastructureFactory[JetStreamTrackingRecorder]):
    """JetStream recorders sharing one connection, configured from the environment.

    ``NIYANTRA_NATS_URL``, ``NIYANTRA_STREAM`` and ``NIYANTRA_SUBJECT_ROOT`` (each also as
    ``<APP>_NIYANTRA_…``); ``CREATE_TABLE=false`` skips creating streams. Applications that
    share a stream need distinct roots, or each would read the others' events.
    """

    NATS_URL = "NIYANTRA_NATS_URL"
    STREAM = "NIYANTRA_STREAM"
    SUBJECT_ROOT = "NIYANTRA_SUBJECT_ROOT"
    CREATE_TABLE = "CREATE_TABLE"
    DEFAULT_URL = "nats://127.0.0.1:4222"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self._conn: SyncNats | None = None
        self._lock = threading.Lock()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """Aggregate recorder; snapshots go to their own stream and root."""
        if purpose == "snapshots":
            stream, root = (
                self._stream() + SNAPSHOT_STREAM_SUFFIX,
                f"{SNAPSHOT_ROOT}.{self._root()}",
            )
            return self._build(JetStreamAggregateRecorder, stream=stream, root=root)
        return self._build(JetStreamAggregateRecorder)

    def application_recorder(self) -> ApplicationRecorder:
        """Application recorder on the configured stream."""
        return self._build(JetStreamApplicationRecorder)

    def tracking_recorder(
        self, tracking_recorder_class: type[JetStreamTrackingRecorder] | None = None
    ) -> JetStreamTrackingRecorder:
        """Tracking recorder of the given class, else of TRACKING_RECORDER_TOPIC, else ours."""
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else JetStreamTrackingRecorder
        assert tracking_recorder_class is not None
        tracking_recorder_class = cast("type[JetStreamTrackingRecorder]", tracking_recorder_class)
        assert issubclass(tracking_recorder_class, JetStreamTrackingRecorder)
        return self._build(tracking_recorder_class)

    def process_recorder(self) -> ProcessRecorder:
        """Process recorder on the configured stream."""
        return self._build(JetStreamProcessRecorder)

    def close(self) -> None:
        """Close the shared connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with translated(self._stream()):
                conn.close()

    def _build(self, cls: type[R], *, stream: str | None = None, root: str | None = None) -> R:
        recorder = cls(self._connection(), stream=stream or self._stream(), root=root or self._root())
        if strtobool(self.env.get(self.CREATE_TABLE) or "yes"):
            recorder.create_stream()
        return recorder

    def _stream(self) -> str:
        return self.env.get(self.STREAM) or S.STREAM

    def _root(self) -> str:
        return self.env.get(self.SUBJECT_ROOT) or S.ROOT

    def _connection(self) -> SyncNats:
        with self._lock:
            if self._conn is None:
                url = self.env.get(self.NATS_URL) or self.DEFAULT_URL
                with translated(self._stream()):
                    self._conn = SyncNats.connect(url)
            return self._conn

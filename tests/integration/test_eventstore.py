"""eventsourcing's recorder conformance suites, and our own checks, against a real nats-server."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from unittest import TestCase
from uuid import uuid4

import msgspec
import nats
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    StoredEvent,
    Tracking,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment, get_topic

from orchestrator.runtime.natsserver import RunningServer
from orchestrator.writeside.eventlog import EventLog
from orchestrator.writeside.eventstore import Factory
from orchestrator.writeside.mapper import MsgspecMapper, Recorded, recorded
from orchestrator.writeside.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamRecorder,
    JetStreamTrackingRecorder,
)
from orchestrator.writeside.storedevents import SubjectStoredEvent, plan_tracking
from schemas import events as ev
from schemas import subjects as S
from tests.conftest import run_nats

_streams = itertools.count(1)
R = TypeVar("R", bound=JetStreamRecorder)


class NatsServerCase(TestCase):
    """One nats-server per test class; recorders made in a test are closed after it."""

    server: ClassVar[RunningServer]
    store: ClassVar[Path]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.store = Path(tempfile.mkdtemp(prefix="niyantra-es-"))
        cls.server = run_nats(cls.store)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        shutil.rmtree(cls.store, ignore_errors=True)
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.recorders: list[JetStreamRecorder] = []

    def tearDown(self) -> None:
        for recorder in self.recorders:
            recorder.close()
        super().tearDown()

    def open_recorder(self, cls: type[R]) -> R:
        """A recorder on a fresh stream and subject root, so notification ids start at 1."""
        n = next(_streams)
        recorder = cls.open(self.server.url, stream=f"T{n}", root=f"ev{n}")
        self.recorders.append(recorder)
        return recorder


class TestAggregateRecorder(NatsServerCase, AggregateRecorderTestCase):
    def create_recorder(self) -> JetStreamAggregateRecorder:
        return self.open_recorder(JetStreamAggregateRecorder)


class TestApplicationRecorder(NatsServerCase, ApplicationRecorderTestCase[JetStreamApplicationRecorder]):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return self.open_recorder(JetStreamApplicationRecorder)

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(NatsServerCase, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return self.open_recorder(JetStreamApplicationRecorder)


class TestTrackingRecorder(NatsServerCase, TrackingRecorderTestCase):
    def create_recorder(self) -> JetStreamTrackingRecorder:
        return self.open_recorder(JetStreamTrackingRecorder)


class TestProcessRecorder(NatsServerCase, ProcessRecorderTestCase):
    def create_recorder(self) -> JetStreamProcessRecorder:
        return self.open_recorder(JetStreamProcessRecorder)


class CustomTrackingRecorder(JetStreamTrackingRecorder):
    pass


class TestFactory(NatsServerCase, InfrastructureFactoryTestCase[Factory]):
    def setUp(self) -> None:
        self.env = Environment(
            "TestCase",
            {
                "PERSISTENCE_MODULE": "orchestrator.writeside.eventstore",
                "NIYANTRA_NATS_URL": self.server.url,
                "TESTCASE_NIYANTRA_STREAM": "FACTORY",
            },
        )
        super().setUp()

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[JetStreamAggregateRecorder]:
        return JetStreamAggregateRecorder

    def expected_application_recorder_class(self) -> type[JetStreamApplicationRecorder]:
        return JetStreamApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[JetStreamTrackingRecorder]:
        return JetStreamTrackingRecorder

    def tracking_recorder_subclass(self) -> type[JetStreamTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[JetStreamProcessRecorder]:
        return JetStreamProcessRecorder

    def test_snapshots_have_their_own_stream(self) -> None:
        recorder = self.factory.aggregate_recorder("snapshots")
        assert isinstance(recorder, JetStreamAggregateRecorder)
        assert (recorder.stream, recorder.root) == ("FACTORY_SNAPSHOTS", "snap.ev")


def _event(oid: Any, version: int, topic: str = "topic", state: bytes = b"x") -> StoredEvent:
    return StoredEvent(originator_id=oid, originator_version=version, topic=topic, state=state)


class TestJetStreamSpecifics(NatsServerCase):
    """What the suites do not cover: subjects, limits, stale writers and concurrent trackers."""

    def read_subjects(self, recorder: JetStreamRecorder) -> list[str]:
        return [m.subject for m in recorder._call(recorder.log.read(f"{recorder.root}.>"))]

    def test_subjects_from_id_topic_or_explicit_subject(self) -> None:
        r = self.open_recorder(JetStreamApplicationRecorder)
        r.insert_events([_event("task.demo.T-005", 1, "mod.ule:Class.Event")])
        explicit = SubjectStoredEvent(
            "task.demo.T-005",
            2,
            "TaskDispatched",
            b"y",
            f"{r.root}.task.demo.T-005.TaskDispatched.node-3",
        )
        r.insert_events([explicit])
        assert self.read_subjects(r) == [
            f"{r.root}.task.demo.T-005.mod_ule_Class_Event",
            f"{r.root}.task.demo.T-005.TaskDispatched.node-3",
        ]
        assert [s.topic for s in r.select_events("task.demo.T-005")] == [
            "mod.ule:Class.Event",
            "TaskDispatched",
        ]

    def test_invalid_ids_and_subjects_are_refused_naming_them(self) -> None:
        r = self.open_recorder(JetStreamApplicationRecorder)
        for bad in ("a b", "a.*", "a.>", "a..b", ""):
            with self.assertRaisesRegex(DataError, "cannot be used in a NATS subject"):
                r.insert_events([_event(bad, 1)])
        with self.assertRaisesRegex(DataError, "is not under"):
            r.insert_events([SubjectStoredEvent("a", 1, "t", b"", "elsewhere.a.t")])
        assert r.max_notification_id() is None

    def test_more_than_one_batch_is_refused_whole(self) -> None:
        r = self.open_recorder(JetStreamApplicationRecorder)
        oid = uuid4()
        with self.assertRaisesRegex(DataError, "exceeds the limit of 1000"):
            r.insert_events([_event(oid, v) for v in range(1001)])
        assert r.insert_events([_event(oid, v) for v in range(1000)]) == list(range(1, 1001))

    def test_stale_writer_in_another_process_is_refused_by_the_server(self) -> None:
        mine = self.open_recorder(JetStreamApplicationRecorder)
        theirs = JetStreamApplicationRecorder.open(self.server.url, stream=mine.stream, root=mine.root)
        self.recorders.append(theirs)
        oid = uuid4()
        mine.insert_events([_event(oid, 1)])
        assert theirs.select_events(oid)[-1].originator_version == 1  # their head: v1
        mine.insert_events([_event(oid, 2)])
        with self.assertRaises(IntegrityError):  # they never saw v2
            theirs.insert_events([_event(oid, 3)])
        with self.assertRaises(IntegrityError):  # and cannot write v2 again either
            theirs.insert_events([_event(oid, 2)])
        mine.insert_events([_event(oid, 3)])
        with self.assertRaises(IntegrityError):  # a stale batch: the server sees a duplicate v3
            theirs.insert_events([_event(oid, 3), _event(oid, 4)])
        assert theirs.insert_events([_event(oid, 4)]) == [4]  # after re-reading the head

    def test_racing_trackers_are_refused_by_the_server(self) -> None:
        r = self.open_recorder(JetStreamProcessRecorder)
        subject = r._tracking_subject("up")
        r.insert_events([_event(uuid4(), 1)], tracking=Tracking("up", 1))
        seen = r._call(r._last_tracking(subject))  # a racing writer reads this head...
        r.insert_events([_event(uuid4(), 1)], tracking=Tracking("up", 2))
        stale = plan_tracking(subject, Tracking("up", 3), seen)  # ...and plans its write on it
        with self.assertRaises(IntegrityError):
            r._call(r.log.append_atomic([stale]))
        assert r.max_tracking_id("up") == 2
        assert [n.id for n in r.select_notifications(None, 10)] == [1, 3]  # tracking took 2 and 4


# --- an Application storing our schemas/ events through the msgspec mapper -------------------


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """A functional-style task aggregate."""

    id: str
    version: int
    node_id: str
    state: str


def project_task(view: TaskView | None, events: Any) -> TaskView | None:
    for r in events:
        assert isinstance(r, Recorded)
        match r.event:
            case ev.TaskDispatched(node_id=node):
                view = TaskView(
                    id=r.originator_id,
                    version=r.originator_version,
                    node_id=node,
                    state="dispatched",
                )
            case ev.TaskStarted() if view is not None:
                view = msgspec.structs.replace(view, version=r.originator_version, state="running")
            case _:
                raise TypeError(f"cannot apply {type(r.event).__name__} to {view!r}")
    return view


class TaskLog(Application[str]):
    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "orchestrator.writeside.eventstore",
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
    }

    def record(self, event: ev.AnyEvent) -> int:
        aggregate, _ = S.route(event)
        try:
            version = self.repository.get(aggregate, projector_func=project_task).version
        except AggregateNotFoundError:
            version = 0  # a new task
        (recording,) = self.save(recorded(event, version + 1))
        return recording.notification.id


class TestApplicationWithMsgspecMapper(NatsServerCase):
    def test_save_and_read_back_a_task_history(self) -> None:
        now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        dispatched = ev.TaskDispatched(
            event_id="d1",
            occurred_at=now,
            graph_id="demo",
            task_id="T-005",
            node_id="node-3",
            attempt=1,
            command="make",
        )
        started = ev.TaskStarted(
            event_id="s1",
            occurred_at=now,
            graph_id="demo",
            task_id="T-005",
            node_id="node-3",
            attempt=1,
        )
        app = TaskLog(env={"NIYANTRA_NATS_URL": self.server.url})
        try:
            assert [app.record(dispatched), app.record(started)] == [1, 2]
            view = app.repository.get("task.demo.T-005", projector_func=project_task)
            assert view == TaskView(id="task.demo.T-005", version=2, node_id="node-3", state="running")
            with self.assertRaises(IntegrityError):  # version 2 is taken
                app.save(recorded(started, 2))
            notes = app.notification_log.select(start=1, limit=10)
            assert [(n.id, n.topic) for n in notes] == [(1, "TaskDispatched"), (2, "TaskStarted")]
        finally:
            app.close()
        # The stream holds exactly our events on their routed subjects, readable by projections.
        assert asyncio.run(self._read(S.aggregate_filter("task.demo.T-005"))) == [
            (1, "ev.task.demo.T-005.TaskDispatched.node-3", dispatched),
            (2, "ev.task.demo.T-005.TaskStarted.node-3", started),  # results end in their node
        ]

    async def _read(self, filter_subject: str) -> list[tuple[int, str, ev.AnyEvent]]:
        nc = await nats.connect(self.server.url)
        try:
            log = EventLog(nc)
            subjects = [m.subject for m in await log.read(filter_subject)]
            return [
                (seq, subj, e) for (seq, e), subj in zip(await log.read_events(filter_subject), subjects, strict=True)
            ]
        finally:
            await nc.close()

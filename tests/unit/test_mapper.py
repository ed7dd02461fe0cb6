"""The msgspec mapper round-trips our events, with and without compression and encryption."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import Environment

from orchestrator.writeside.mapper import MsgspecMapper, Recorded, recorded
from orchestrator.writeside.storedevents import SubjectStoredEvent
from schemas import codec
from schemas import events as ev
from schemas import records as rec

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DISPATCHED = ev.TaskDispatched(
    event_id="d1",
    occurred_at=NOW,
    graph_id="demo",
    task_id="T-005",
    node_id="node-3",
    attempt=1,
    command="make",
    candidates=(rec.Candidate(node_id="node-3", score=0.9, reason="idle"),),
)
STARTED = ev.TaskStarted(event_id="s1", occurred_at=NOW, graph_id="demo", task_id="T-005", node_id="node-3", attempt=1)
NODE = ev.NodeRegistered(event_id="n1", occurred_at=NOW, node_id="node-3", slots=4)


def make_mapper(*, compress: bool = False, encrypt: bool = False) -> MsgspecMapper:
    cipher = AESCipher(Environment(env={"CIPHER_KEY": AESCipher.create_key(16)})) if encrypt else None
    return MsgspecMapper(JSONTranscoder(), ZlibCompressor() if compress else None, cipher)


@pytest.mark.parametrize(
    ("event", "version", "aggregate", "subject"),
    [
        (DISPATCHED, 1, "task.demo.T-005", "ev.task.demo.T-005.TaskDispatched.node-3"),
        (STARTED, 2, "task.demo.T-005", "ev.task.demo.T-005.TaskStarted.node-3"),
        (NODE, 7, "node.node-3", "ev.node.node-3.NodeRegistered"),
    ],
)
def test_round_trip_names_topic_and_subject(event: ev.AnyEvent, version: int, aggregate: str, subject: str) -> None:
    mapper = make_mapper()
    stored = mapper.to_stored_event(recorded(event, version))
    assert stored == SubjectStoredEvent(aggregate, version, type(event).__name__, codec.encode(event), subject)
    assert mapper.to_domain_event(stored) == Recorded(originator_id=aggregate, originator_version=version, event=event)


@pytest.mark.parametrize(("compress", "encrypt"), [(True, False), (False, True), (True, True)])
def test_round_trip_through_compressor_and_cipher(compress: bool, encrypt: bool) -> None:
    mapper = make_mapper(compress=compress, encrypt=encrypt)
    stored = mapper.to_stored_event(recorded(DISPATCHED, 1))
    assert stored.state != codec.encode(DISPATCHED)
    assert mapper.to_domain_event(stored).event == DISPATCHED


def test_recorded_is_a_domain_event() -> None:
    r = recorded(STARTED, 2)
    assert isinstance(r, DomainEventProtocol)
    assert r.timestamp == NOW


def test_wrong_aggregate_or_bare_event_is_refused() -> None:
    mapper = make_mapper()
    with pytest.raises(ValueError, match="belongs to 'task.demo.T-005'"):
        mapper.to_stored_event(Recorded(originator_id="task.demo.T-006", originator_version=1, event=STARTED))
    with pytest.raises(TypeError, match="wrap it: recorded"):
        mapper.to_stored_event(STARTED)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", [b"not json", b'{"type": "NoSuchEvent"}'])
def test_undecodable_state_names_the_event(state: bytes) -> None:
    with pytest.raises(MapperDeserialisationError, match="TaskStarted version 3 of 'task.demo.T-005'"):
        make_mapper().to_domain_event(StoredEvent("task.demo.T-005", 3, "TaskStarted", state))

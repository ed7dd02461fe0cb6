"""ArtifactRecord and TaskCompleted.outputs: old logs decode, new events round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from schemas import codec
from schemas import events as ev
from schemas import records as rec
from schemas.errors import MalformedEvent

# A completion exactly as the code before `outputs` existed wrote it.
OLD_COMPLETION = (
    b'{"type":"TaskCompleted","event_id":"e1","occurred_at":"2026-01-02T03:04:05Z","causation_id":null,'
    b'"correlation_id":null,"schema_version":1,"graph_id":"g","task_id":"t","node_id":"n","attempt":1,'
    b'"outcome":"success","exit_code":0,"duration_s":1.5,"expected_duration_s":null,"retries":0,"quality":null,'
    b'"error":"","output_tail":"","phase":"run","scope_violations":[],"log_subject":"log.g.t.1.run","retryable":true}'
)
DIGEST = "a" * 64


def _completion(**kw: object) -> ev.TaskCompleted:
    base: dict[str, object] = dict(
        event_id="e1",
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        graph_id="g",
        task_id="t",
        node_id="n",
        attempt=1,
        outcome="success",
    )
    return ev.TaskCompleted(**{**base, **kw})  # type: ignore[arg-type]


def test_a_completion_recorded_before_outputs_existed_decodes_with_none():
    event = codec.decode(OLD_COMPLETION)
    assert isinstance(event, ev.TaskCompleted)
    assert event.outputs == () and event.log_subject == "log.g.t.1.run" and event.exit_code == 0


def test_outputs_round_trip_in_order():
    records = (
        rec.ArtifactRecord(path="lib/libz.a", digest=DIGEST, size=123_456, mode=0o644),
        rec.ArtifactRecord(path="bin/my tool:v2", digest="b" * 64, size=0, mode=0o755),
    )
    event = _completion(outputs=records)
    back = codec.decode(codec.encode(event))
    assert isinstance(back, ev.TaskCompleted) and back.outputs == records


def test_a_record_written_with_path_and_digest_only_gets_the_defaults():
    record = msgspec.json.decode(b'{"path":"x","digest":"' + DIGEST.encode() + b'"}', type=rec.ArtifactRecord)
    assert (record.size, record.mode) == (0, 0o644)


def test_a_record_is_frozen():
    record = rec.ArtifactRecord(path="x", digest=DIGEST)
    with pytest.raises(AttributeError):
        record.path = "y"  # type: ignore[misc]


def test_a_malformed_record_is_a_malformed_event_naming_the_field():
    bad = OLD_COMPLETION[:-1] + b',"outputs":[{"path":"x"}]}'
    with pytest.raises(MalformedEvent, match="digest"):
        codec.decode(bad)


def test_the_artifact_subjects_are_the_ones_nats_py_uses():
    from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_META_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

    from schemas import subjects as S

    assert S.ARTIFACT_STREAM == OBJ_STREAM_TEMPLATE.format(bucket=S.ARTIFACT_BUCKET)
    assert f"{S.ARTIFACT_CHUNKS}.n1" == OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=S.ARTIFACT_BUCKET, obj="n1")
    assert f"{S.ARTIFACT_META}.bTE=" == OBJ_META_PRE_TEMPLATE.format(bucket=S.ARTIFACT_BUCKET, obj="bTE=")

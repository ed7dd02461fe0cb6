"""GraphSubmitted with inputs, outputs and a source tree: old logs decode, digests hold, parts rejoin."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import msgspec

from orchestrator.graphs.submission import GraphAssembly, graph_digest, graph_events
from orchestrator.graphs.validation import build_graph
from schemas import codec
from schemas import events as ev
from schemas import records as rec

T0 = datetime(2026, 1, 2, tzinfo=UTC)
DOC = {
    "graph": {"id": "g", "title": "T"},
    "tasks": [
        {"id": "a", "command": "make a", "labels": {"os": "linux"}, "env": ["X"]},
        {"id": "b", "command": "make b", "depends_on": ["a"], "estimate": "5s"},
    ],
}
# What the code before inputs/outputs/source existed wrote for DOC, and the digest it recorded.
OLD_DIGEST = "0b36c8647b61b4a3c8eb0b928aa84064284f204db8a35405a188ee787a78cd0a"
OLD_EVENT = (
    b'{"type":"GraphSubmitted","event_id":"e1","occurred_at":"2026-01-02T00:00:00Z","causation_id":null,'
    b'"correlation_id":"g","schema_version":1,"graph_id":"g","title":"T","tasks":[{"id":"a","command":"make a",'
    b'"depends_on":[],"title":"","type":"","estimate_s":null,"timeout_s":null,"max_attempts":1,"tier":1,'
    b'"priority":null,"labels":{"os":"linux"},"preflight":null,"scope":[],"env":["X"]},{"id":"b",'
    b'"command":"make b","depends_on":["a"],"title":"","type":"","estimate_s":5.0,"timeout_s":null,'
    b'"max_attempts":1,"tier":1,"priority":null,"labels":{},"preflight":null,"scope":[],"env":[]}],'
    b'"source":"f","submitted_by":"","digest":"' + OLD_DIGEST.encode() + b'","parts":1,"rules":[],'
    b'"generation_limit":100,"backlog_priority":null}'
)


def _record(i: int) -> rec.ArtifactRecord:
    return rec.ArtifactRecord(path=f"src/dir {i % 7}/file{i}.c", digest=f"{i:064x}", size=i, mode=0o644)


def test_a_graph_recorded_before_these_fields_decodes_with_their_defaults():
    event = codec.decode(OLD_EVENT)
    assert isinstance(event, ev.GraphSubmitted)
    assert event.source_tree == "" and event.source_files == () and event.filesets == {}
    assert all(t.inputs == () and t.outputs == () for t in event.tasks)


def test_a_graph_without_io_keeps_the_digest_it_had():
    assert graph_digest(build_graph("f", DOC)) == OLD_DIGEST


def test_inputs_outputs_source_and_filesets_change_the_digest():
    base = build_graph("f", DOC)
    t0 = msgspec.structs.replace(base.tasks[0], outputs=("a.o",))
    changed = [
        dataclasses.replace(base, tasks=(t0, base.tasks[1])),
        dataclasses.replace(base, source_tree="f" * 64),
        dataclasses.replace(base, filesets={"h": ("x.h",)}),
    ]
    digests = {graph_digest(s) for s in changed}
    assert len(digests) == 3 and OLD_DIGEST not in digests


def test_source_files_split_across_parts_and_rejoin_whole():
    files = tuple(_record(i) for i in range(2000))
    spec = dataclasses.replace(build_graph("f", DOC), source_tree="e" * 64, source_files=files, filesets={"h": ("x",)})
    events = graph_events(spec, T0, "e1", part_bytes=16 * 1024)
    head = events[0]
    assert isinstance(head, ev.GraphSubmitted) and head.parts == len(events) > 5
    assert head.source_tree == "e" * 64 and head.filesets == {"h": ("x",)}
    assembly = GraphAssembly()
    done = [assembly.add(codec.decode(codec.encode(e))) for e in events]  # type: ignore[arg-type]
    whole = done[-1]
    assert done[:-1] == [None] * (len(events) - 1) and whole is not None
    assert whole.source_files == files and whole.tasks == spec.tasks and whole.parts == 1


def test_a_small_graph_is_one_event_with_its_files():
    spec = dataclasses.replace(build_graph("f", DOC), source_tree="e" * 64, source_files=(_record(1),))
    (only,) = graph_events(spec, T0, "e1")
    assert isinstance(only, ev.GraphSubmitted) and only.source_files == (_record(1),)

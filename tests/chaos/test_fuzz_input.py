"""Hostile input, property-based (no server): 10,000+ bad submissions and malformed events.

Bad submissions (bad JSON/TOML bytes, cycles, bad ids, wrong types and ranges, unknown keys,
dangling and duplicate ids, too many tasks): validation raises `GraphFileError` with at least one
located reason, and nothing else (validation writes nothing; the server part in
tests/chaos/test_fuzz_server.py checks that no event is written). Malformed events (random bytes,
truncated JSON, unknown types, wrong schema versions, missing or mistyped fields): decoding
raises `MalformedEvent`, every projection records a dead letter and moves past it, the archive
marks the row ``_malformed``. Hostile but decodable events (bad ids, huge strings, odd numbers)
never crash a fold. Hostile cases: 4,000 submissions + 2,000 cycles + 4,000 malformed events + 1,000
hostile decodable events = 11,000, plus 1,000 valid controls (``FUZZ_SCALE`` multiplies them;
``scripts/fuzz`` runs them at a larger scale).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import GraphFileError
from orchestrator.graphs.graphfile import parse_document
from orchestrator.graphs.validation import Limits, build_graph
from projections.archive.projector import archive_row
from projections.fold import Fold, dead_key
from projections.runner import PROJECTIONS
from schemas import codec
from schemas import eventbase as evbase
from schemas import events as ev
from schemas.errors import MalformedEvent

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
MANY = settings(
    max_examples=int(4000 * SCALE),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CYCLES = settings(MANY, max_examples=int(2000 * SCALE))
SOME = settings(MANY, max_examples=int(1000 * SCALE))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(max_tasks=50, max_bytes=64 * 1024)

ID_CHARS = "abcXYZ019_-"
bad_ids = st.one_of(  # what schemas.ids refuses: empty, a control character, over 256 characters
    st.just(""),
    st.text(min_size=1, max_size=12).filter(lambda s: any(not c.isprintable() and c != " " for c in s)),
    st.text(alphabet="abc", min_size=257, max_size=270),
    st.sampled_from(["a\tb", "line\nbreak", "nul\x00", "bidi\u202e"]),
)


@st.composite
def dags(draw, min_tasks: int = 2, max_tasks: int = 12) -> list[dict[str, object]]:
    """A valid task list: each task depends only on earlier ones."""
    n = draw(st.integers(min_tasks, max_tasks))
    stem = draw(st.text(alphabet=ID_CHARS, max_size=6))
    names = [f"t{stem}{k}" for k in range(n)]
    edges = draw(st.lists(st.tuples(st.integers(1, n - 1), st.integers(0, n - 2)), max_size=2 * n))
    return [
        {"id": name, "command": "true", "depends_on": sorted({names[j] for a, j in edges if a == i and j < i})}
        for i, name in enumerate(names)
    ]


def doc(tasks: list[dict[str, object]]) -> bytes:
    return json.dumps({"graph": {"id": "g", "title": "fuzz"}, "tasks": tasks}).encode()


@st.composite
def cyclic(draw) -> bytes:
    """A valid graph plus the edges that close a loop: i depends on j and j on i (or i on itself)."""
    tasks = draw(dags())
    i = draw(st.integers(0, len(tasks) - 1))
    j = draw(st.integers(i, len(tasks) - 1))
    a, b = tasks[i], tasks[j]
    for x, y in ((a, b), (b, a)):
        deps = x["depends_on"]
        assert isinstance(deps, list)
        if y["id"] not in deps:
            deps.append(y["id"])
    return doc(tasks)


WRONG_FIELDS = {
    "command": st.one_of(st.just(""), st.integers(), st.lists(st.integers(), max_size=2), st.none()),
    "depends_on": st.one_of(st.integers(), st.just("x y"), st.lists(st.integers(), min_size=1, max_size=2)),
    "max_attempts": st.one_of(st.integers(max_value=0), st.integers(min_value=101), st.text(max_size=3)),
    "tier": st.one_of(st.integers(max_value=0), st.integers(min_value=4), st.just("high")),
    "timeout": st.one_of(st.just("soon"), st.just("-5s"), st.just([1])),
    "priority": st.one_of(st.just("urgent"), st.floats(allow_nan=True), st.just({})),
    "labels": st.one_of(st.just("a=b"), st.just([1, 2]), st.just({"k": {"n": 1}})),
    "env": st.one_of(st.just("PATH"), st.just(["1BAD"]), st.just([3])),
    "scope": st.one_of(st.just(7), st.just([1])),
    "no_such_key": st.integers(),
}


@st.composite
def wrong_field(draw) -> bytes:
    tasks = draw(dags())
    t = draw(st.sampled_from(tasks))
    name = draw(st.sampled_from(sorted(WRONG_FIELDS)))
    t[name] = draw(WRONG_FIELDS[name])
    return doc(tasks)


@st.composite
def bad_id(draw) -> bytes:
    tasks = draw(dags())
    where = draw(st.sampled_from(["id", "dep", "graph"]))
    bad = draw(bad_ids)
    if where == "id":
        draw(st.sampled_from(tasks))["id"] = bad
    elif where == "dep":
        tasks[-1]["depends_on"] = [bad]
    else:
        return json.dumps({"graph": {"id": bad}, "tasks": tasks}).encode()
    return doc(tasks)


@st.composite
def broken_shape(draw) -> bytes:
    tasks = draw(dags())
    kind = draw(st.sampled_from(["dangling", "duplicate", "too-many", "no-tasks", "not-a-table"]))
    if kind == "dangling":
        tasks[-1]["depends_on"] = ["no-such-task-zz"]
    elif kind == "duplicate":
        tasks.append(dict(tasks[0]))
    elif kind == "too-many":
        tasks = [{"id": f"t{i}", "command": "true"} for i in range(LIMITS.max_tasks + draw(st.integers(1, 20)))]
    elif kind == "no-tasks":
        tasks = []
    else:
        return json.dumps(draw(st.one_of(st.lists(st.integers()), st.integers(), st.text()))).encode()
    return doc(tasks)


garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.builds(lambda t: b"{" + t, st.binary(max_size=100)),  # JSON that never closes
    st.builds(lambda t: b"[[tasks]]\nid = " + t, st.binary(max_size=50)),  # TOML gone wrong
)
bad_submissions = st.one_of(cyclic(), wrong_field(), bad_id(), broken_shape(), garbage)


def rejected(data: bytes) -> GraphFileError:
    with pytest.raises(GraphFileError) as refused:
        build_graph("fuzz.json", parse_document("fuzz.json", data), LIMITS)
    return refused.value


@MANY
@given(bad_submissions)
def test_every_bad_submission_is_rejected_with_a_located_reason(data):
    err = rejected(data)
    assert err.problems, "rejected without a reason"
    assert all(str(p).startswith("fuzz.json") and len(str(p)) > len("fuzz.json: ") for p in err.problems)


@CYCLES
@given(cyclic())
def test_every_cycle_is_named(data):
    err = rejected(data)
    assert any("cycle" in str(p) or "itself" in str(p) for p in err.problems), err.problems


@SOME
@given(dags())
def test_the_valid_graphs_the_fuzzer_mutates_are_accepted(tasks):  # the mutations above are what is wrong
    assert len(build_graph("fuzz.json", parse_document("fuzz.json", doc(tasks)), LIMITS).tasks) == len(tasks)


# --- malformed events ---------------------------------------------------------------------------

SAMPLES: list[evbase.Event] = [
    ev.TaskStarted(event_id="s", occurred_at=NOW, graph_id="g", task_id="t", node_id="n", attempt=1),
    ev.NodeObserved(
        event_id="o", occurred_at=NOW, node_id="n", cpu_percent=1.0, memory_percent=2.0, load1=0.1, running_tasks=0
    ),
    ev.TaskCancelled(event_id="c", occurred_at=NOW, graph_id="g", task_id="t", by="me"),
]


@st.composite
def malformed(draw) -> bytes:
    base = json.loads(codec.encode(draw(st.sampled_from(SAMPLES))))
    kind = draw(st.sampled_from(["bytes", "truncated", "type", "version", "missing", "mistyped", "not-object"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=200))
        return data if not data.strip().startswith(b"{") else b"\xff" + data
    if kind == "truncated":
        raw = json.dumps(base).encode()
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "type":
        base["type"] = draw(st.one_of(st.text(max_size=20), st.integers(), st.none()).filter(lambda t: t not in TAGS))
    elif kind == "version":
        base["schema_version"] = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=2)))
    elif kind == "missing":
        base.pop(draw(st.sampled_from(sorted(k for k in base if k in REQUIRED))))
    elif kind == "mistyped":
        key = draw(st.sampled_from(sorted(k for k in base if k in REQUIRED)))
        base[key] = draw(st.one_of(st.just([]), st.just({}), st.just(True) if key != "attempt" else st.just("one")))
    else:
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=10)))).encode()
    return json.dumps(base).encode()


TAGS = {info.tag for info in (msgspec.inspect.type_info(t) for t in ev.AnyEvent.__args__)}  # type: ignore[attr-defined]
REQUIRED = {"event_id", "occurred_at", "graph_id", "task_id", "node_id", "attempt", "by", "type"}


def folds() -> dict[str, Fold]:
    return {name: Fold(p) for name, p in PROJECTIONS.items()}


@MANY
@given(malformed())
def test_every_malformed_event_is_recorded_and_skipped_by_every_reader(data):
    with pytest.raises(MalformedEvent):
        codec.decode(data, subject="ev.fuzz", seq=7)
    for name, f in folds().items():
        f.apply(data, "ev.fuzz", 7)
        assert f.seq == 7, name  # moved past it
        assert f.dead[dead_key(7)].kind == "malformed", name
    assert archive_row(7, "ev.fuzz", data, NOW)["type"] == "_malformed"


hostile_text = st.one_of(bad_ids, st.text(max_size=40), st.text(alphabet="x", min_size=5000, max_size=6000))


@SOME
@given(
    graph=hostile_text,
    task=hostile_text,
    node=hostile_text,
    attempt=st.integers(-(2**40), 2**40),
    cpu=st.floats(allow_nan=True, allow_infinity=True),
)
def test_hostile_but_decodable_events_never_crash_a_fold(graph, task, node, attempt, cpu):
    hostile = [
        ev.TaskStarted(event_id="s", occurred_at=NOW, graph_id=graph, task_id=task, node_id=node, attempt=attempt),
        ev.NodeObserved(
            event_id="o",
            occurred_at=NOW,
            node_id=node,
            cpu_percent=cpu,
            memory_percent=cpu,
            load1=cpu,
            running_tasks=attempt,
        ),
        ev.TaskCancelled(event_id="c", occurred_at=NOW, graph_id=graph, task_id=task, by=node),
    ]
    for name, f in folds().items():
        for seq, e in enumerate(hostile, 1):
            f.apply(codec.encode(e), "ev.fuzz", seq)  # applied or dead-lettered, never raised
        assert f.seq == len(hostile), name

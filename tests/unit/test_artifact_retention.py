"""The pure parts of operating the store: references, the inventory, a task's output, the gc rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node_agent.artifacts.blobinfo import BlobInfo, blob_info, hex_of, nats_digest, orphan_nuids
from node_agent.artifacts.errors import NoSuchOutput
from node_agent.artifacts.inventory import Reference, inventory, pick_output, references_from_events
from node_agent.artifacts.retention import needed_digests, plan_gc
from schemas import events as ev
from schemas import records as rec

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
D = {name: (name * 64)[:64] for name in "abcdef"}


def done(task: str, attempt: int, outputs: dict[str, str], *, outcome="success", at=NOW, phase="run"):
    return ev.TaskCompleted(
        event_id=f"{task}-{attempt}",
        occurred_at=at,
        graph_id="g",
        task_id=task,
        node_id="n",
        attempt=attempt,
        outcome=outcome,
        phase=phase,
        outputs=tuple(rec.ArtifactRecord(path=p, digest=d, size=1) for p, d in outputs.items()),
    )


def blob(d: str, *, age=10 * DAY, size=100, intact=True) -> BlobInfo:
    return BlobInfo(d, size, NOW - age, f"nuid-{d[:4]}", intact)


def test_references_come_from_successful_completions_only():
    events = [
        done("compile", 1, {"a.o": D["a"]}, outcome="failure"),
        done("compile", 2, {"a.o": D["b"]}),
        done("link", 1, {"libz.a": D["c"], "libz.so": D["b"]}),
        ev.NodeLost(event_id="x", occurred_at=NOW, node_id="n", reason="gone"),
    ]
    refs = references_from_events(events)
    assert [(r.task_id, r.path, r.digest) for r in refs] == [
        ("compile", "a.o", D["b"]),
        ("link", "libz.a", D["c"]),
        ("link", "libz.so", D["b"]),
    ]


def test_the_inventory_lists_every_blob_with_its_referrers_and_the_missing_ones():
    refs = references_from_events([done("compile", 1, {"a.o": D["a"]}), done("link", 1, {"x": D["a"], "y": D["c"]})])
    rows = inventory([blob(D["a"]), blob(D["b"])], refs)
    assert [(r.digest, r.size, [x.task_id for x in r.refs]) for r in rows] == [
        (D["a"], 100, ["compile", "link"]),
        (D["b"], 100, []),
        (D["c"], None, ["link"]),  # referenced but not stored
    ]


def test_pick_output_takes_the_last_successful_attempt():
    completions = [
        done("t", 1, {"out/x": D["a"]}),
        done("t", 2, {"out/x": D["b"]}),
        done("t", 3, {}, outcome="failure"),
    ]
    assert pick_output(completions, "g", "t", "./out/x").digest == D["b"]


@pytest.mark.parametrize(
    ("completions", "why"),
    [
        ([], "no successful completion"),
        ([done("t", 1, {"x": D["a"]}, outcome="failure")], "no successful completion"),
        ([done("t", 1, {"x": D["a"]}, phase="preflight")], "no successful completion"),
        ([done("t", 1, {"x": D["a"], "y": D["b"]})], "attempt 1 recorded x, y"),
    ],
)
def test_pick_output_says_why_there_is_none(completions, why):
    with pytest.raises(NoSuchOutput, match=why) as e:
        pick_output(completions, "g", "t", "z")
    assert (e.value.graph_id, e.value.task_id, e.value.path) == ("g", "t", "z")


def ref(d: str, age: timedelta, task="t") -> Reference:
    return Reference(d, "g", task, "p", NOW - age)


@pytest.mark.parametrize(
    ("b", "refs", "needed", "removed", "reason"),
    [
        (blob(D["a"]), [], set(), True, ""),
        (blob(D["a"]), [ref(D["a"], 2 * DAY)], set(), False, "referenced by g/t"),
        (blob(D["a"]), [ref(D["a"], 8 * DAY)], set(), True, ""),
        (blob(D["a"]), [ref(D["a"], 8 * DAY), ref(D["a"], 1 * DAY, "u")], set(), False, "referenced by g/u"),
        (blob(D["a"]), [ref(D["a"], 30 * DAY)], {D["a"]}, False, "needed by a task"),
        (blob(D["a"], age=timedelta(minutes=5)), [], set(), False, "grace"),
        (BlobInfo(D["a"], 1, None, "n", True), [], set(), False, "unknown"),
        (blob(D["a"], intact=False), [], set(), True, ""),
        (blob(D["a"]), [ref(D["b"], DAY)], set(), True, ""),
    ],
)
def test_the_gc_rule(b, refs, needed, removed, reason):
    plan = plan_gc([b], refs, needed, now=NOW, keep_for=7 * DAY, min_age=timedelta(hours=1))
    assert (b.digest in plan.remove) is removed
    if not removed:
        assert reason in dict(plan.keep)[b.digest]
    assert plan.bytes_freed == (b.size if removed else 0)


def test_the_gc_plan_is_sorted_and_deterministic():
    blobs = [blob(D[k]) for k in "dcba"]
    one = plan_gc(blobs, [ref(D["c"], DAY)], {D["a"]}, now=NOW, keep_for=7 * DAY, min_age=DAY)
    two = plan_gc(list(reversed(blobs)), [ref(D["c"], DAY)], {D["a"]}, now=NOW, keep_for=7 * DAY, min_age=DAY)
    assert one == two and one.remove == (D["b"], D["d"]) and [k for k, _ in one.keep] == [D["a"], D["c"]]


def test_needed_digests_are_the_outputs_of_the_dependencies_of_tasks_not_ended():
    outputs = {
        ("g", "compile"): [rec.ArtifactRecord(path="a.o", digest=D["a"])],
        ("g", "gen"): [rec.ArtifactRecord(path="h.h", digest=D["b"])],
        ("g", "old"): [rec.ArtifactRecord(path="o", digest=D["c"])],
    }
    tasks = [
        ("g", "link", "ready", ["compile"]),
        ("g", "test", "pending", ["gen"]),
        ("g", "done", "succeeded", ["old"]),
        ("h", "link", "running", ["compile"]),  # another graph's task of the same name needs nothing of g
    ]
    assert needed_digests(tasks, outputs) == {D["a"], D["b"]}


def test_nats_digest_spelling_round_trips():
    assert hex_of(nats_digest(D["a"])) == D["a"]
    assert hex_of("SHA-256=!!") == "" and hex_of(None) == ""


def test_orphan_chunks_are_the_nuids_no_object_names():
    subjects = ["$O.artifacts.C.n1", "$O.artifacts.C.n2", "$O.artifacts.C.n3"]
    assert orphan_nuids(subjects, ["n2", "gone"]) == ["n1", "n3"]


def test_blob_info_marks_a_foreign_or_replaced_object_as_not_intact():
    from nats.js.api import ObjectInfo

    good = ObjectInfo(name=D["a"], bucket="b", nuid="n", size=3, digest=nats_digest(D["a"]), mtime=NOW.isoformat())
    bad = ObjectInfo(name=D["a"], bucket="b", nuid="n", size=3, digest=nats_digest(D["b"]), mtime="not a time")
    foreign = ObjectInfo(name="readme.txt", bucket="b", nuid="n", size=3, digest=nats_digest(D["a"]))
    assert blob_info(good) == BlobInfo(D["a"], 3, NOW, "n", True)
    assert blob_info(bad).intact is False and blob_info(bad).mtime is None
    assert blob_info(foreign).intact is False


def test_a_graphs_source_files_and_manifest_are_references_so_gc_keeps_them():
    files = (rec.ArtifactRecord(path="src/a.c", digest=D["a"], size=1),)
    head = ev.GraphSubmitted(
        event_id="s", occurred_at=NOW, graph_id="g", tasks=(), parts=2, source_tree=D["b"], source_files=files
    )
    part = ev.GraphTasksAdded(
        event_id="s/1",
        occurred_at=NOW,
        graph_id="g",
        part=1,
        tasks=(),
        source_files=(rec.ArtifactRecord(path="src/b.c", digest=D["c"], size=1),),
    )
    refs = references_from_events([head, part])
    assert [(r.digest, r.task_id, r.path) for r in refs] == [
        (D["b"], "", "(source manifest)"),
        (D["a"], "", "src/a.c"),
        (D["c"], "", "src/b.c"),
    ]
    plan = plan_gc(
        [blob(D["a"]), blob(D["b"]), blob(D["c"]), blob(D["d"])], refs, set(), now=NOW, keep_for=30 * DAY, min_age=DAY
    )
    assert plan.remove == (D["d"],)

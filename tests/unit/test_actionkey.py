"""The action key's named form: which task changes change which field, and which change nothing."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.decision.actionkey import (
    NO_ENTRY,
    SourceIndex,
    action_form,
    action_key,
    changed_fields,
    miss_reason,
    selected_sources,
    static_form,
    with_deps,
)
from schemas.records import ArtifactRecord, TaskSpec

A = "a" * 64
B = "b" * 64
SRC = (
    ArtifactRecord(path="src/a.c", digest=A, size=1),
    ArtifactRecord(path="src/b.c", digest=B, size=1),
    ArtifactRecord(path="README", digest=B, size=1),
)
BASE = TaskSpec(id="cc a.o", command="cc -c src/a.c", inputs=("src/a.c",), outputs=("a.o",), labels={"os": "linux"})
DEP = (ArtifactRecord(path="gen/h.h", digest=A, size=3),)


def form(task=BASE, deps=DEP, src=SRC, tree="t1"):
    return action_form(task, deps, src, tree)


def _r(**kw):
    return msgspec.structs.replace(BASE, **kw)


CHANGES = [
    ("command", dict(task=_r(command="cc -O2 -c src/a.c"))),
    ("preflight", dict(task=_r(preflight="true"))),
    ("type", dict(task=_r(type="compile"))),
    ("inputs", dict(task=_r(inputs=("src/a.c", "src/none.c")))),
    ("outputs", dict(task=_r(outputs=("a.o", "a.d")))),
    ("labels", dict(task=_r(labels={"os": "darwin"}))),
    ("scope", dict(task=_r(scope=("a.o",)))),
    ("env", dict(task=_r(env=("CC",)))),
    ("sources", dict(src=(ArtifactRecord(path="src/a.c", digest=B, size=1), *SRC[1:]))),
    ("sources", dict(src=(ArtifactRecord(path="src/a.c", digest=A, size=1, mode=0o755), *SRC[1:]))),
    ("deps", dict(deps=(ArtifactRecord(path="gen/h.h", digest=B, size=3),))),
    ("deps", dict(deps=())),
]


@pytest.mark.parametrize(("field", "change"), CHANGES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CHANGES)])
def test_a_change_changes_the_key_and_names_its_field(field, change):
    before, after = form(), form(**change)
    assert action_key(before) != action_key(after)
    assert changed_fields(before, after) == [field]
    assert miss_reason(before, after) == f"changed since the last hit: {field}"


SAME = [
    ("id", dict(task=_r(id="other"))),
    ("title", dict(task=_r(title="compile a"))),
    ("estimate", dict(task=_r(estimate_s=3.0))),
    ("timeout", dict(task=_r(timeout_s=30.0))),
    ("priority", dict(task=_r(priority=5))),
    ("attempts", dict(task=_r(max_attempts=3))),
    ("depends_on ids", dict(task=_r(depends_on=("gen",)))),
    ("a source file the inputs do not select", dict(src=(*SRC[:2], ArtifactRecord(path="README", digest=A)))),
    ("the tree digest when inputs are declared", dict(tree="t2")),
    ("order of dependency outputs", dict(deps=(*DEP, ArtifactRecord(path="b", digest=B))[::-1])),
]


@pytest.mark.parametrize(("what", "change"), SAME, ids=[w for w, _ in SAME])
def test_what_is_not_part_of_the_key(what, change):
    base = form(deps=(*DEP, ArtifactRecord(path="b", digest=B))) if what.startswith("order") else form()
    assert action_key(form(**change)) == action_key(base), what


def test_no_inputs_means_the_whole_tree():
    t = _r(inputs=())
    assert action_key(form(task=t, tree="t1")) != action_key(form(task=t, tree="t2"))
    assert changed_fields(form(task=t, tree="t1"), form(task=t, tree="t2")) == ["sources"]


@pytest.mark.parametrize(
    ("inputs", "filesets", "paths"),
    [
        (("src/*.c",), {}, ["src/a.c", "src/b.c"]),
        (("src",), {}, ["src/a.c", "src/b.c"]),
        (("@c",), {"c": ("src/b.c",)}, ["src/b.c"]),
        (("@missing",), {}, []),
        (("**",), {}, ["README", "src/a.c", "src/b.c"]),
    ],
)
def test_selected_sources(inputs, filesets, paths):
    assert [f.path for f in selected_sources(inputs, SRC, filesets)] == paths


def test_form_is_static_plus_deps_and_deterministic():
    assert with_deps(static_form(BASE, SRC, "t1"), DEP) == form()
    assert action_key(form()) == action_key(dict(reversed(list(form().items()))))
    assert len(action_key(form())) == 64


def test_miss_reasons():
    assert miss_reason(None, form()) == NO_ENTRY
    assert miss_reason({}, form()) == NO_ENTRY
    assert miss_reason(form(), form()).startswith("the entry of the last key is gone")
    assert changed_fields({"x": "1"}, {"y": "1"}) == ["x", "y"]


def test_one_index_serves_every_task_of_a_graph_as_a_fresh_one_would():
    filesets = {"c": ("src/b.c",), "all": ("src",)}
    index = SourceIndex(SRC, filesets)
    asks = [("@c",), ("src/a.c", "@c"), ("@all",), ("@c", "README"), ("@missing",), ("@all", "@c")]
    for inputs in [*asks, *asks]:  # the second time from the index's kept fileset choices
        assert selected_sources(inputs, SRC, filesets, index) == selected_sources(inputs, SRC, filesets)

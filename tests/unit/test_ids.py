"""Users' ids as they write them, and the one mapping to subject, key and file-name tokens."""

from __future__ import annotations

import re

import pytest

from orchestrator.cli.taskref import among, readings, resolve
from schemas import subjects as S
from schemas.errors import InvalidId
from schemas.ids import check_user_id, file_name, from_token, id_problem, task_ref, token

# What real tools name their tasks, and pairs a lossy replacement (say, every unsafe character
# to "_") would merge.
REAL_IDS = [
    "T-005",
    "NFCORE_RNASEQ.PREPARE_GENOME.GUNZIP_GTF_00000001",  # Nextflow process
    "extract.load_orders",  # Airflow task group
    "//pkg/sub:target",  # Bazel label
    "src/a.o",  # Make target
    "lib/lib z.a",  # Ninja target with a space
    "CMakeFiles/zlib.dir/adler32.c.o",
    "résumé/ünïcode",
    "日本語のタスク",
    "emoji 🚀 task",
    "a",
    "x" * 256,
    "é" * 256,
    "日" * 256,
    "a.b",
    "a_b",
    "a-b",
    "a b",
    "a=2Eb",
    "a_2Eb",
    "=",
    "==",
    "==YQ",
    "=h0",
    "*",
    ">",
    "a.*.>",
    "-leading-dash",
    " leading and trailing ",
]

SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_\-=]+$")
KV_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")  # nats-py's valid KV key


@pytest.mark.parametrize("value", REAL_IDS, ids=lambda v: v[:40])
def test_a_real_id_is_valid_and_its_token_round_trips(value):
    assert id_problem(value) is None
    assert check_user_id("task id", value) == value
    tok = token(value)
    assert SUBJECT_TOKEN.match(tok), tok
    assert from_token(tok) == value
    assert KV_KEY.match(S.readiness_key(value, value))
    assert S.task_of_key(S.readiness_key("g.1", value)) == ("g.1", value)


def test_no_two_ids_share_a_token_a_file_name_or_a_message_id():
    assert len({token(v) for v in REAL_IDS}) == len(REAL_IDS)
    assert len({file_name(v) for v in REAL_IDS}) == len(REAL_IDS)
    pairs = [(g, t) for g in ("a", "a:b", "a/b") for t in ("b:c", "c", "b/c")]
    assert len({task_ref(g, t) for g, t in pairs}) == len(pairs)
    assert len({S.task_aggregate(g, t) for g, t in pairs}) == len(pairs)


def test_ids_valid_before_keep_their_subjects_keys_and_message_ids():
    for plain in ("T-005", "build_all", "g1", "A-b_C"):
        assert token(plain) == plain
    assert S.task_aggregate("demo", "T-005") == "task.demo.T-005"
    assert S.log_subject("demo", "T-005", 2) == "log.demo.T-005.2.run"
    assert task_ref("demo", "T-005") == "demo:T-005"


def test_subjects_stay_within_the_servers_control_line_and_names_within_a_file_name():
    longest = "日" * 256
    assert len(S.subject(S.task_aggregate(longest, longest), "TaskDispatched", "node-1")) < 4096 - 100
    assert len(file_name(longest).encode()) <= 255
    assert len(f"{file_name(longest)}.99.preflight".encode()) <= 255


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("x" * 257, "is 257 characters long; at most 256"),
        ("a\tb", "contains the control character '\\t' at position 1"),
        ("line\nbreak", "contains the control character '\\n' at position 4"),
        ("nul\x00", "contains the control character '\\x00' at position 3"),
        ("bidi\u202eoverride", "contains the control character '\\u202e' at position 4"),
        (7, "must be a string, got int"),
    ],
)
def test_only_what_is_really_wrong_is_refused_and_named(value, problem):
    assert id_problem(value) == problem
    with pytest.raises(InvalidId, match=re.escape(problem)):
        check_user_id("task id", value)


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "=", "=4", "=zz", "=41", "==!!", "a=2e"])
def test_a_string_no_id_maps_to_is_not_taken_for_one(bad):
    with pytest.raises(ValueError):
        from_token(bad)


KNOWN = [("g", "src/a.o"), ("src", "a.o"), ("build", "T-1"), ("other", "T-1"), ("g/x", "y"), ("g", "x/y")]


@pytest.mark.parametrize(
    ("ref", "graph", "expected"),
    [
        ("build/T-1", None, ("build", "T-1")),
        ("T-1", "other", ("other", "T-1")),
        ("src/a.o", "g", ("g", "src/a.o")),
        ("g/src/a.o", None, ("g", "src/a.o")),
        ("a.o", None, ("src", "a.o")),
    ],
)
def test_a_task_reference_finds_the_one_task_it_names(ref, graph, expected):
    assert resolve(ref, graph, among(KNOWN)) == expected


@pytest.mark.parametrize(
    ("ref", "graph", "message"),
    [
        ("T-1", None, "'T-1' could be 'T-1' in graph 'build', 'T-1' in graph 'other': name the graph with --graph"),
        ("src/a.o", None, "'src/a.o' could be 'src/a.o' in graph 'g', 'a.o' in graph 'src'"),
        ("g/x/y", None, "'g/x/y' could be 'x/y' in graph 'g', 'y' in graph 'g/x'"),
        ("nope", None, "no task 'nope'"),
        ("T-1", "missing", "no task 'T-1' in graph 'missing'"),
    ],
)
def test_a_task_reference_that_is_ambiguous_or_unknown_is_refused_naming_the_choices(ref, graph, message):
    with pytest.raises(LookupError, match=re.escape(message)):
        resolve(ref, graph, among(KNOWN))


def test_every_split_at_a_slash_is_a_reading():
    assert readings("a/b/c", None) == [(None, "a/b/c"), ("a", "b/c"), ("a/b", "c")]
    assert readings("/x/", None) == [(None, "/x/")]
    assert readings("a/b", "g") == [("g", "a/b")]

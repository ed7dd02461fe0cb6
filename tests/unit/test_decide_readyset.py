"""The ready set decide takes tasks from: kept value by value (`ReadySet`), it gives the same
order and digest as the computation from scratch, over random sequences of value changes (ties,
equal keys, tasks ready in the future or without a ready time, tasks leaving and coming back);
and decide gives the same bytes with it and without it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.decision.decide import DeciderConfig, Views, decide
from orchestrator.decision.readyset import ReadySet, digest_of, ranked
from orchestrator.decision.scoring import ScoringConfig, priority
from orchestrator.decision.sortedkeys import SortedKeys
from projections.readiness.fold import TaskView
from tests.unit.builders import T0, at, graph, observed, registered, spec
from tests.unit.test_decide import views as folded

POLICIES = [ScoringConfig(), ScoringConfig(policy="seed"), ScoringConfig(policy="fifo"), ScoringConfig(aging_per_s=0.0)]

KEYS = [(g, t) for g in ("g", "h") for t in ("a", "b", "c", "d", "e")]
value = st.fixed_dictionaries(
    {
        "state": st.sampled_from(["ready", "ready", "ready", "pending", "dispatched"]),
        "since": st.sampled_from([None, -100.0, -3.0, -1.0, 0.0, 0.000001, 0.5, 2.0, 50.0]),  # seconds from T0
        "rank_s": st.sampled_from([0.0, 1.0, 2.5, 60.0]),
        "downstream": st.integers(0, 3),
        "priority": st.sampled_from([None, 0, 1]),
        "estimate_s": st.sampled_from([None, 1.0, 60.0]),
        "dependents": st.integers(0, 2),
        "seq": st.integers(1, 4),
    }
)
change = st.tuples(st.sampled_from(KEYS), st.none() | value)  # None: the value is deleted


def task(key: tuple[str, str], v: dict) -> TaskView:
    return TaskView(
        graph_id=key[0],
        task_id=key[1],
        command="true",
        state=v["state"],
        ready_since=None if v["since"] is None else at(v["since"]),
        rank_s=v["rank_s"],
        downstream=v["downstream"],
        priority=v["priority"],
        estimate_s=v["estimate_s"],
        dependents=tuple(f"x{i}" for i in range(v["dependents"])),
        seq=v["seq"],
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(change, max_size=40), st.sampled_from([-5.0, 0.0, 0.5, 1.0, 10.0]), st.sampled_from(POLICIES))
def test_kept_order_and_digest_equal_the_computation_from_scratch(changes, now_s, cfg):
    kept = ReadySet(cfg)
    tasks: dict[tuple[str, str], TaskView] = {}
    for key, v in changes:
        if v is None:
            tasks.pop(key, None)
            kept.drop(key)
        else:
            tasks[key] = task(key, v)
            kept.put(tasks[key])
    now = T0 + timedelta(seconds=now_s)
    scratch = Views(tasks=tasks, nodes={})
    with_set = dataclasses.replace(scratch, ready_set=kept)
    order = [(t.graph_id, t.task_id) for t in ranked(scratch, now, cfg, shortest_first=False)]
    assert [(t.graph_id, t.task_id) for t in ranked(with_set, now, cfg, shortest_first=False)] == order
    assert digest_of(with_set) == digest_of(scratch)
    ready = sorted(k for k, t in tasks.items() if t.state == "ready")
    assert sorted(order) == ready  # every ready task, once
    assert digest_of(scratch).startswith(f"{len(ready)}:")
    values = [priority(tasks[k], now, cfg) for k in order]
    assert all(a >= b - 1e-6 for a, b in zip(values, values[1:], strict=False))  # the priority order
    rebuilt = ReadySet(cfg, tasks.values())
    assert list(rebuilt.ranked(now)) == order and rebuilt.digest() == kept.digest()


@pytest.mark.parametrize(
    ("name", "tasks", "expected"),
    [
        (
            "equal keys: by graph, then task",
            [("h", "a", 0.0, 1.0), ("g", "b", 0.0, 1.0), ("g", "a", 0.0, 1.0)],
            "ga gb ha",
        ),
        ("longer wait first (aging)", [("g", "a", 0.0, 5.0), ("g", "b", 0.0, 1.0)], "gb ga"),
        ("rank beats a short wait", [("g", "a", 0.0, 1.0), ("g", "b", 10.0, 5.0)], "gb ga"),
        ("ready in the future: no wait, its base only", [("g", "a", 1.0, 50.0), ("g", "b", 0.0, 1.0)], "ga gb"),
        ("undated: its base only", [("g", "a", 0.1, None), ("g", "b", 0.0, 9.0)], "ga gb"),
    ],
)
def test_order_at_ten_seconds(name, tasks, expected):
    ts = {
        (g, t): TaskView(
            graph_id=g, task_id=t, command="true", state="ready", rank_s=r, ready_since=None if s is None else at(s)
        )
        for g, t, r, s in tasks
    }
    got = ranked(Views(tasks=ts, nodes={}), at(10.0), ScoringConfig(), shortest_first=False)
    assert " ".join(t.graph_id + t.task_id for t in got) == expected, name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=300))
def test_sorted_keys_stay_sorted(ops):
    kept, present = SortedKeys(), set()
    for add, k in ops:
        key = (k % 7, k)
        if add and key not in present:
            kept.add(key)
            present.add(key)
        elif not add and key in present:
            kept.remove(key)
            present.discard(key)
    assert list(kept) == sorted(present) and len(kept) == len(present)
    with pytest.raises(KeyError):
        kept.remove((99, 99))


def test_sorted_keys_split_blocks():
    kept = SortedKeys()
    keys = [(i * 7919) % 5003 for i in range(5003)]
    for k in keys:
        kept.add(k)
    for k in keys[::2]:
        kept.remove(k)
    assert list(kept) == sorted(keys[1::2])


@pytest.mark.parametrize("cfg", POLICIES)
def test_decide_gives_the_same_bytes_with_the_kept_set(cfg):
    events = [
        graph("g", *(spec(f"t{i}", estimate_s=float(1 + i % 4)) for i in range(30))),
        graph("h", *(spec(f"u{i}", estimate_s=2.0) for i in range(12))),
        registered("n1", slots=3),
        registered("n2", slots=2),
        observed("n1", t=1),
        observed("n2", t=1),
    ]
    v = folded(*events)
    config = DeciderConfig(scoring=cfg)
    kept = dataclasses.replace(v, ready_set=ReadySet(cfg, (t for t in v.tasks.values())))
    scratch = [msgspec.json.encode(d) for d in decide(v, at(3), config)]
    assert scratch and [msgspec.json.encode(d) for d in decide(kept, at(3), config)] == scratch
    assert [msgspec.json.encode(d) for d in decide(v, at(3), config)] == scratch  # twice: the same bytes

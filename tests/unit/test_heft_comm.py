"""The benchmark's reference HEFT with communication costs, on the 2002 paper's example graph."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "heft_comm.py"
_spec = importlib.util.spec_from_file_location("heft_comm", _path)
heft_comm = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["heft_comm"] = heft_comm  # (dataclasses look the module up while the class is made)
_spec.loader.exec_module(heft_comm)  # type: ignore[union-attr]

# Topcuoglu, Hariri, Wu 2002, Fig. 2: ten tasks on three processors.
COMP = {
    "1": (14, 16, 9),
    "2": (13, 19, 18),
    "3": (11, 13, 19),
    "4": (13, 8, 17),
    "5": (12, 13, 10),
    "6": (13, 16, 9),
    "7": (7, 15, 11),
    "8": (5, 11, 14),
    "9": (18, 12, 20),
    "10": (21, 7, 16),
}
EDGES = {
    ("1", "2"): 18,
    ("1", "3"): 12,
    ("1", "4"): 9,
    ("1", "5"): 11,
    ("1", "6"): 14,
    ("2", "8"): 19,
    ("2", "9"): 16,
    ("3", "7"): 23,
    ("4", "8"): 27,
    ("4", "9"): 23,
    ("5", "9"): 13,
    ("6", "8"): 15,
    ("7", "10"): 17,
    ("8", "10"): 11,
    ("9", "10"): 13,
}
PREDS = {t: [i for (i, j) in EDGES if j == t] for t in COMP}


def paper():
    return heft_comm.heft(list(COMP), PREDS, {t: [float(x) for x in c] for t, c in COMP.items()}, EDGES)


def test_the_papers_example_has_makespan_80():
    assert paper().makespan == 80.0


@pytest.mark.parametrize(
    ("task", "rank"),
    [("1", 108.0), ("2", 77.0), ("3", 80.0), ("4", 80.0), ("5", 69.0), ("6", 63.333), ("7", 42.667)]
    + [("8", 35.667), ("9", 44.333), ("10", 14.667)],
)
def test_upward_ranks_are_the_papers(task, rank):
    assert paper().rank[task] == pytest.approx(rank, abs=1e-3)


def test_every_task_starts_after_its_inputs_arrive_and_no_processor_runs_two_at_once():
    s = paper()
    for t, parents in PREDS.items():
        for u in parents:
            arrive = s.times[u][1] + (0 if s.proc[u] == s.proc[t] else EDGES[(u, t)])
            assert s.times[t][0] >= arrive
    for p in range(3):
        spans = sorted(s.times[t] for t in COMP if s.proc[t] == p)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_insertion_fills_an_idle_gap():
    # a runs on p1 (fast there) until 1; b must wait on p0 for a's data until 10 and runs 10-20;
    # c (independent, ranked after b) goes into p0's idle time before b, not after it
    comp = {"a": [100.0, 1.0], "b": [10.0, 100.0], "c": [3.0, 100.0]}
    preds = {"a": [], "b": ["a"], "c": []}
    s = heft_comm.heft(list(comp), preds, comp, {("a", "b"): 9.0})
    assert s.rank == {"a": 114.5, "b": 55.0, "c": 51.5}
    assert (s.proc, s.times) == ({"a": 1, "b": 0, "c": 0}, {"a": (0.0, 1.0), "b": (10.0, 20.0), "c": (0.0, 3.0)})
    assert s.makespan == 20.0

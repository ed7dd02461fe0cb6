"""The views' frozen entries stay out of the cyclic garbage collector (``gc=False``): a rebuild or
a long-lived projector holds hundreds of thousands of them, and every collection would walk them."""

from __future__ import annotations

import gc

import msgspec
import pytest

from projections.confidence.entries import ConfidenceSummary, NodeConfidence, Prediction
from projections.decay import Decayed
from projections.feedback import QualityGate, Streak
from projections.fold import DeadLetter
from projections.node_scores.fold import Holder, NodeView, TypeEstimate, TypeScore
from projections.node_scores.patterns import PatternView
from projections.readiness.entries import GraphView, TaskView
from projections.readiness.graphrank import Shape

ENTRIES = [Prediction, NodeConfidence, ConfidenceSummary, Decayed, Streak, QualityGate, DeadLetter, Shape]
ENTRIES += [Holder, NodeView, TypeEstimate, TypeScore, PatternView, TaskView, GraphView]


@pytest.mark.parametrize("cls", ENTRIES)
def test_every_frozen_entry_type_is_untracked(cls):
    assert cls.__struct_config__.frozen and cls.__struct_config__.gc is False, cls.__name__


def test_entries_holding_containers_are_untracked_and_encode_the_same():
    t = TaskView(graph_id="g", task_id="t", command="x", state="ready", depends_on=("a",), labels={"os": "linux"})
    n = NodeView(node_id="n", active=("g/t#1",), scores={"k": TypeScore()})
    g = GraphView(graph_id="g", counts={"ready": 1})
    assert not any(gc.is_tracked(x) for x in (t, n, g))
    assert msgspec.json.decode(msgspec.json.encode(t), type=TaskView) == t

"""Every view has a rule for every event type on the stream (a new event type that a view
forgets fails here, not as a dead letter in production); a subclass of an event type finds its
base's rule; a type no view knows is a programming error naming the view."""

from __future__ import annotations

import typing

import pytest

from orchestrator.decision import lifecycle as lc
from projections.confidence import fold as confidence
from projections.fold import rule_for
from projections.node_scores import fold as node_scores
from projections.readiness import fold as readiness
from schemas import events as ev

EVENT_TYPES = typing.get_args(ev.AnyEvent)
TABLES = {"readiness": readiness._RULES, "node-scores": node_scores._RULES, "confidence": confidence._RULES}


@pytest.mark.parametrize("view", sorted(TABLES))
def test_each_view_has_a_rule_for_every_event_type(view):
    assert len(EVENT_TYPES) >= 21
    missing = [t.__name__ for t in EVENT_TYPES if t not in TABLES[view]]
    assert missing == []


def test_the_task_lifecycle_covers_every_event_readiness_folds_as_a_task_event():
    task_rules = {readiness._task_event, readiness._completed, readiness._cache_hit}
    folded = {t for t, rule in readiness._RULES.items() if rule in task_rules}
    assert folded == set(typing.get_args(readiness.TaskSubjectEvent)) == set(typing.get_args(lc.TaskEvent))


def test_a_subclass_finds_its_base_rule_and_an_unknown_type_is_named():
    class Marker:
        pass

    class Child(Marker):
        pass

    rules = {Marker: "marker rule"}
    assert rule_for(rules, Child(), "readiness") == "marker rule"
    with pytest.raises(TypeError, match="confidence: unhandled event type int"):
        rule_for(rules, 3, "confidence")

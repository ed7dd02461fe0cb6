"""Frozen records stay out of the cyclic garbage collector (``gc=False``): a long-lived process
holding tens of thousands of them would otherwise pay for them in every full collection."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import msgspec
import pytest

from schemas import eventbase as evbase
from schemas import events as ev
from schemas import records as rec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


@pytest.mark.parametrize(
    "cls",
    [evbase.Event, *_all_subclasses(evbase.Event), rec.TaskSpec, rec.Candidate, rec.FollowUpRule, rec.GeneratedTask],
)
def test_every_event_and_record_type_is_untracked(cls):
    assert cls.__struct_config__.gc is False, cls.__name__


def test_an_event_holding_containers_is_not_tracked():
    spec = rec.TaskSpec(id="a", command="true", depends_on=("b",), labels={"os": "linux"})
    e = ev.GraphSubmitted(event_id="s", occurred_at=T0, graph_id="g", title="", tasks=(spec,))
    assert not gc.is_tracked(e) and not gc.is_tracked(spec)
    assert msgspec.json.decode(msgspec.json.encode(e), type=ev.GraphSubmitted) == e  # same values, same bytes

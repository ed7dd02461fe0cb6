"""A rebuild split over two processes (`projections.rebuild.worker`) gives exactly the views of
one process: every key byte for byte, dead letters included; a worker that fails fails it."""

from __future__ import annotations

import io
import random

import pytest

from orchestrator.writeside.eventlog import Append, EventLog
from projections.errors import ProjectionError
from projections.rebuild.build import rebuild
from projections.rebuild.worker import BuiltView, Feed, frame, read_frames
from projections.runner import PROJECTIONS
from tests.unit.test_views_property import messages


async def test_split_rebuild_equals_one_process(nc):
    msgs = messages(random.Random(7), 600)
    log = EventLog(nc)
    await log.ensure_stream()
    for i in range(0, len(msgs), 200):
        await log.append_atomic([Append(subject, data) for data, subject in msgs[i : i + 200]])
    one = await rebuild(nc, split=False)
    two = await rebuild(nc, split=True)
    assert list(two.folds) == list(PROJECTIONS)
    assert [type(f) for f in two.folds.values()][1:] == [BuiltView, BuiltView]  # really in the worker
    for name in PROJECTIONS:
        assert two.values(name) == one.values(name), name
        assert len(two.folds[name].dead) == len(one.folds[name].dead) > 0, name  # the malformed ones
        assert two.folds[name].seq == one.folds[name].seq == len(msgs), name


async def test_a_worker_that_fails_fails_the_rebuild():
    feed = Feed.start(["node-scores"])
    try:
        await feed.send([(1, "ev.bad.x.Bad", b"{}")])  # malformed: a dead letter, the worker goes on
        await feed.send([(5, "ev.bad.x.Bad", b"{}")])  # a gap in the sequence: the worker refuses it
        with pytest.raises(ProjectionError, match="rebuild worker for node-scores exited with code 1"):
            await feed.finish()
    finally:
        await feed.stop()


def test_frames_carry_chunks_exactly():
    chunks = [[(1, "ev.a.b", b"x"), (2, "ev.c", b""), (3, "ev.d.e.f", b"\r\n\x00{}")], [(4, "ev.g", b"y" * 70_000)]]
    out = io.BytesIO(b"".join(part for c in chunks for part in frame(c)))
    assert list(read_frames(out)) == chunks
    cut = io.BytesIO(b"".join(frame(chunks[0]))[:-1])
    with pytest.raises(ProjectionError, match="input ends inside the frame of seq 1"):
        list(read_frames(cut))

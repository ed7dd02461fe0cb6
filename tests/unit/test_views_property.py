"""Property: any event sequence, folded incrementally by a projector that restarts (and crashes
mid-write) at random points, leaves exactly the KV values of one fold from zero, for every view."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.fold import Fold
from projections.runner import PROJECTIONS
from schemas import codec
from schemas import eventbase as evbase
from schemas import events as ev
from schemas import records as rec
from schemas import subjects as S
from tests.unit.builders import T0

NODES = ("n1", "n2", "n3")
_enc = msgspec.json.Encoder()


def _graph(rng: random.Random, gid: str, t: float) -> ev.GraphSubmitted:
    n = rng.randint(1, 6)
    specs = []
    for i in range(n):
        deps = tuple(sorted({f"t{j}" for j in range(i) if rng.random() < 0.4}))
        specs.append(
            rec.TaskSpec(
                id=f"t{i}",
                command="true",
                depends_on=deps,
                type=rng.choice(["", "build", "test"]),
                estimate_s=rng.choice([None, 1.0, 30.0]),
                max_attempts=rng.randint(1, 3),
                tier=rng.choice([1, 1, 2, 3]),
            )
        )
    return ev.GraphSubmitted(
        event_id=f"s:{gid}", occurred_at=T0 + timedelta(seconds=t), graph_id=gid, tasks=tuple(specs)
    )


def _task_event(rng: random.Random, i: int, t: float) -> evbase.Event:
    at = T0 + timedelta(seconds=t)
    g, task, node, attempt = rng.choice(["g0", "g1"]), f"t{rng.randint(0, 5)}", rng.choice(NODES), rng.randint(0, 3)
    common = dict(event_id=f"e{i}", occurred_at=at, graph_id=g, task_id=task)
    kind = rng.randrange(9)
    if kind == 0:
        phase = "preflight" if rng.random() < 0.2 else "run"
        exp = rng.choice([None, 2.0])
        return ev.TaskDispatched(
            **common, node_id=node, attempt=attempt, command="x", phase=phase, expected_duration_s=exp
        )
    if kind == 1:
        return ev.TaskStarted(**common, node_id=node, attempt=attempt)
    if kind in (2, 3):
        outcome = rng.choice(["success", "success", "partial", "failure"])
        return ev.TaskCompleted(
            **common,
            node_id=node,
            attempt=attempt,
            outcome=outcome,
            duration_s=rng.choice([0.0, 1.5, 40.0]),
            phase=rng.choice(["run", "run", "preflight"]),
            retryable=rng.random() < 0.8,
        )
    if kind == 4:
        return ev.TaskLost(**common, node_id=node, attempt=attempt, reason="node lost")
    if kind == 5:
        return ev.PredictionExpired(**common, node_id=node, attempt=attempt, deadline=at)
    if kind == 6:
        return rng.choice([ev.TaskApproved, ev.TaskRejected, ev.TaskCancelled])(**common, by="ana")
    if kind == 7:
        return ev.GraphCancelled(event_id=f"e{i}", occurred_at=at, graph_id=g, by="ana")
    return ev.AutonomyChanged(
        event_id=f"e{i}", occurred_at=at, level=rng.choice(["full", "cautious"]), by="ana", reason="x"
    )


def _node_event(rng: random.Random, i: int, t: float) -> evbase.Event:
    at, node = T0 + timedelta(seconds=t), rng.choice(NODES)
    kind = rng.randrange(4)
    if kind == 0:
        return ev.NodeRegistered(event_id=f"e{i}", occurred_at=at, node_id=node, slots=2, observe_interval_s=5.0)
    if kind == 1:
        return ev.NodeObserved(
            event_id=f"e{i}",
            occurred_at=at,
            node_id=node,
            cpu_percent=1.0,
            memory_percent=2.0,
            load1=0.1,
            running_tasks=1,
            draining=rng.random() < 0.1,
        )
    if kind == 2:
        return ev.NodeLost(event_id=f"e{i}", occurred_at=at, node_id=node, reason="silent")
    return ev.NodeDrainRequested(event_id=f"e{i}", occurred_at=at, node_id=node, by="ana")


def messages(rng: random.Random, n: int) -> list[tuple[bytes, str]]:
    """(payload, subject) pairs: two graphs, then a random mix, a few malformed."""
    out: list[tuple[bytes, str]] = []
    t = 0.0
    for gid in ("g0", "g1"):
        e = _graph(rng, gid, t)
        out.append((codec.encode(e), S.route(e)[1]))
    for i in range(n):
        t += rng.choice([0.0, 0.5, 3.0, 120.0, -1.0])  # event times may step back a little
        r = rng.random()
        if r < 0.03:
            out.append((b'{"type": "NoSuchEvent"}' if rng.random() < 0.5 else b"\xff not json", "ev.bad.x.Bad"))
            continue
        e = _task_event(rng, i, t) if r < 0.75 else _node_event(rng, i, t)
        out.append((codec.encode(e), S.route(e)[1]))
    return out


def one_fold(name: str, msgs: list[tuple[bytes, str]]) -> dict[str, bytes]:
    fold = Fold(PROJECTIONS[name])
    for seq, (data, subject) in enumerate(msgs, 1):
        fold.apply(data, subject, seq)
    return {k: _enc.encode(v) for k, v in fold.snapshot().items()}


def with_restarts(name: str, msgs: list[tuple[bytes, str]], rng: random.Random) -> dict[str, bytes]:
    """What a projector that restarts and crashes mid-write leaves in its (simulated) KV bucket."""
    kv: dict[str, bytes] = {}
    stored_seq = 0
    seq = 0
    while seq < len(msgs):
        fold = Fold(PROJECTIONS[name])  # a fresh process: replays from 1
        for s in range(1, seq + 1):
            fold.apply(*msgs[s - 1], s)
        if fold.seq <= stored_seq:
            fold.discard_changes()
        crash_at = seq + rng.randint(1, len(msgs) - seq)
        while seq < crash_at:
            end = min(crash_at, seq + rng.randint(1, 7))
            for s in range(seq + 1, end + 1):
                fold.apply(*msgs[s - 1], s)
            seq = end
            if fold.seq <= stored_seq:
                fold.discard_changes()
                continue
            changes = [(k, _enc.encode(v)) for k, v in fold.changes().items()]
            if seq == crash_at and seq < len(msgs) and rng.random() < 0.5:
                changes = changes[: rng.randrange(len(changes))]  # killed between two atomic batches
                kv.update((k, v) for k, v in changes if k != S.CHECKPOINT_KEY)
                break
            kv.update(changes)
            stored_seq = fold.seq
        seq = stored_seq if rng.random() < 0.5 else seq  # the next process may find less stored than seen
    kv.pop(S.CHECKPOINT_KEY, None)
    return kv


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 80))
def test_incremental_with_restarts_equals_one_fold_from_zero(seed, n):
    rng = random.Random(seed)
    msgs = messages(rng, n)
    for name in PROJECTIONS:
        assert with_restarts(name, msgs, rng) == one_fold(name, msgs), name


def test_malformed_events_become_dead_letters_and_the_fold_goes_on():
    good = ev.NodeRegistered(event_id="r", occurred_at=T0, node_id="n1", slots=1)
    fold = Fold(PROJECTIONS["node-scores"])
    fold.apply(b"\xff", "ev.node.n1.NodeRegistered", 1)
    fold.apply(codec.encode(good), "ev.node.n1.NodeRegistered", 2)
    changes = fold.changes()
    dead = changes["_dead.1"]
    assert (dead.projector, dead.seq, dead.kind) == ("node-scores", 1, "malformed") and "JSON" in dead.reason
    assert "node.n1" in changes and changes[S.CHECKPOINT_KEY].malformed == 1
    assert changes[S.CHECKPOINT_KEY].seq == 2

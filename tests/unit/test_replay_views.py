"""The replayer's views: its folds moved together to any mix of sequences equal the folds moved
one at a time, and its confidence inputs equal what the confidence summary renders."""

from __future__ import annotations

from orchestrator.decision.scoring import ScoringConfig
from orchestrator.replay.replayer import Replayer
from projections.confidence.fold import summary_value
from projections.fold import Fold
from projections.runner import PROJECTIONS
from tests.unit.test_replay_readyset import recorded

NAMES = ("readiness", "node-scores", "confidence")


def alone(messages, name: str, seq: int):
    fold = Fold(PROJECTIONS[name])
    for m in messages:
        if m.seq <= seq:
            fold.apply(m.data, m.subject, m.seq)
    return fold


def test_views_at_mixed_and_backward_sequences_equal_each_fold_alone():
    messages = recorded(ScoringConfig()).messages
    last = messages[-1].seq
    replayer = Replayer(messages)
    steps = [(s, s, s) for s in range(1, last + 1, 9)] + [(last, last - 5, last - 2), (30, last, 12), (last,) * 3]
    for r, n, c in steps:
        views = replayer.views({"readiness": r, "node-scores": n, "confidence": c}, ScoringConfig())
        want = {name: alone(messages, name, seq) for name, seq in zip(NAMES, (r, n, c), strict=True)}
        assert views.tasks == want["readiness"].view.tasks and set(views.ready or ()) == want["readiness"].view.ready
        assert views.nodes == want["node-scores"].view.nodes
        assert dict(views.types) == {t.type: t for t in want["node-scores"].view.types.values()}
        summary = summary_value(want["confidence"].view)
        assert (views.confidence, views.autonomy, views.quality_threshold) == (
            summary.confidence,
            summary.level,
            summary.quality_threshold,
        )
    assert replayer.rebuilds >= 2  # (30, last, 12) moved two folds back

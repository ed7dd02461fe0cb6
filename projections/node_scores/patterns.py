"""Command × error-signature patterns (pure): which commands keep failing the same way.

Held by the node-scores view under the KV keys ``pattern.<hash>`` (`PatternView`). A failed run
(`projections.feedback.counts_as_failure`) adds one to the streak of its (command, signature)
pattern; a success or partial of the command clears every pattern of that command (it works
again). Flagging follows `projections.feedback.is_flagged`. Cleared patterns stay as history
(a KV view never deletes here; their number is bounded by the distinct failures seen).
"""

from __future__ import annotations

import hashlib

import msgspec

from projections.feedback import Streak, counts_as_failure, error_signature, streak_after
from schemas import events as ev

PATTERN_PREFIX = "pattern"


class PatternView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One command failing with one error signature: its streak and where it failed."""

    command: str
    signature: str
    streak: Streak = Streak()
    nodes: tuple[str, ...] = ()  # nodes of the failures in the current streak
    last_task: str = ""
    seq: int = 0


def pattern_key(command: str, signature: str) -> str:
    """KV key of a (command, signature) pattern."""
    digest = hashlib.sha256(f"{command}\0{signature}".encode()).hexdigest()[:24]
    return f"{PATTERN_PREFIX}.{digest}"


def learn_command(
    patterns: dict[str, PatternView],
    by_command: dict[str, list[str]],
    e: ev.TaskCompleted,
    command: str,
    seq: int,
) -> list[str]:
    """Fold one run completion of ``command`` into the patterns; returns the keys it changed."""
    if counts_as_failure(e):
        sig = error_signature(e.exit_code, e.error, e.output_tail)
        key = pattern_key(command, sig)
        p = patterns.get(key) or PatternView(command=command, signature=sig)
        if key not in patterns:
            by_command.setdefault(command, []).append(key)
        nodes = p.nodes if p.streak.failures else ()
        patterns[key] = msgspec.structs.replace(
            p,
            streak=streak_after(p.streak, True, e.occurred_at, e.error or sig),
            nodes=tuple(sorted({*nodes, e.node_id})),
            last_task=f"{e.graph_id}/{e.task_id}",
            seq=seq,
        )
        return [key]
    if e.outcome == "failure":
        return []  # a cancellation: says nothing about the command
    changed = []
    for key in by_command.get(command, ()):
        p = patterns[key]
        if p.streak.failures:
            patterns[key] = msgspec.structs.replace(
                p, streak=streak_after(p.streak, False, e.occurred_at), nodes=(), seq=seq
            )
            changed.append(key)
    return changed

"""Feedback rules (pure): error signatures, failure streaks of patterns, and the quality threshold.

Each rule is a pure function of events (and, for a flag's cool-down, of ``now``), folded into
the views by their own evolve functions, so every view stays a function of the log and
``replay --check`` reproduces every decision that used them. Nothing here is appended to the
log: a flag is *derived* (like a node's liveness), never recorded.

**Error signature** of a failed run: ``"exit <code>: <line>"`` where ``<line>`` is the
completion's ``error`` unless that only repeats the exit code, else the last non-empty line of
its output tail; normalized (lower case, every run of digits -> ``#``, hex ids of 8+ characters
-> ``<hex>``, whitespace collapsed, at most 160 characters), so the same failure on another
node, at another time or with another pid has the same signature.

**Failure streak** (`Streak`) of a pattern: the number of failures *in a row* since its last
success. A failed run (outcome ``failure``, not a cancellation: a person stopping a task says
nothing about the pattern) adds one; a success or a partial clears it to zero (the pattern
worked). Consecutive, not decayed or cumulative: a pattern that fails now and then amid
successes is flaky, not broken, and is never flagged; one that fails ``flag_after`` times with
no success between is. A pattern is **flagged** at ``now`` while ``failures >= flag_after``
and its last failure is less than ``flag_cooldown_s`` old. After the cool-down the pattern may
be tried again (a circuit breaker's half-open state): a success clears it, one more failure
flags it again at once (the streak is still at or above the bound).

**Quality threshold** (`QualityGate`): starts at ``initial``; every run completion that reports a
``quality`` and did not fail is judged against the threshold *as it stands*, then the threshold
moves by the average ``A`` of the last ``window`` such scores:

- ``A >= high``: threshold + ``step`` (at most ``ceiling``): it tightens while quality is high;
- ``A < threshold``: threshold - ``step`` (at least ``floor``): it loosens when quality falls;
- otherwise it stays.

A reported ``success`` whose quality is below the threshold is judged ``partial``. The recorded
event keeps the agent's report; readiness, node-scores and confidence fold the judged outcome
from the same `QualityGate` over the same events, so they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import msgspec

from schemas import events as ev
from schemas import records as rec

FLAG_AFTER = 3
FLAG_COOLDOWN_S = 1800.0
SIGNATURE_CHARS = 160

_DIGITS = re.compile(r"\d+")
_HEX = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b")
_SPACE = re.compile(r"\s+")
_GENERIC = re.compile(r"^exit code -?\d+$")


def normalize(line: str) -> str:
    """A message with what varies between runs (numbers, hex ids, spacing) taken out."""
    s = _HEX.sub("<hex>", line.strip().lower())
    s = _DIGITS.sub("#", s)
    return _SPACE.sub(" ", s)[:SIGNATURE_CHARS]


def error_signature(exit_code: int | None, error: str, output_tail: str = "") -> str:
    """``exit <code>: <normalized message>`` of a failed run (see the module docstring)."""
    line = error.strip()
    if not line or _GENERIC.match(line):
        tail = [t for t in output_tail.splitlines() if t.strip()]
        line = tail[-1] if tail else line
    code = "none" if exit_code is None else str(exit_code)
    return f"exit {code}: {normalize(line)}"


def counts_as_failure(e: ev.TaskCompleted) -> bool:
    """A run that failed by itself (a cancellation is a person's act, not the pattern's)."""
    return e.phase == "run" and e.outcome == "failure" and not e.error.startswith("cancelled")


class Streak(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A pattern's failures in a row since its last success, and its totals.

    The folds call `streak_after` for a success only when it clears a streak, so ``successes``
    counts the successes that cleared one (a pattern that never failed stays empty).
    """

    failures: int = 0
    total_failures: int = 0
    successes: int = 0
    last_failure_at: datetime | None = None
    last_error: str = ""
    cleared_at: datetime | None = None


def streak_after(s: Streak, failed: bool, at: datetime, error: str = "") -> Streak:
    """The streak after one more run of the pattern: a failure adds one, a success clears it."""
    if failed:
        return Streak(
            failures=s.failures + 1,
            total_failures=s.total_failures + 1,
            successes=s.successes,
            last_failure_at=at,
            last_error=error[:SIGNATURE_CHARS],
            cleared_at=s.cleared_at,
        )
    return msgspec.structs.replace(
        s, failures=0, successes=s.successes + 1, cleared_at=at if s.failures else s.cleared_at
    )


def is_flagged(s: Streak, now: datetime, flag_after: int = FLAG_AFTER, cooldown_s: float = FLAG_COOLDOWN_S) -> bool:
    """The pattern failed ``flag_after`` times in a row and the last failure is within the cool-down."""
    if s.failures < flag_after or s.last_failure_at is None:
        return False
    return (now - s.last_failure_at).total_seconds() < cooldown_s


def flag_words(s: Streak, now: datetime, cooldown_s: float = FLAG_COOLDOWN_S) -> str:
    """'failed 3 times in a row (last 12s ago, flag lifts in 1788s)'."""
    if s.last_failure_at is None:
        return f"failed {s.failures} times in a row"
    ago = max((now - s.last_failure_at).total_seconds(), 0.0)
    return f"failed {s.failures} times in a row (last {ago:.0f}s ago, flag lifts in {max(cooldown_s - ago, 0.0):.0f}s)"


# --- the quality threshold ------------------------------------------------------------------


@dataclass(frozen=True)
class QualityRule:
    """Bounds and steps of the quality threshold (one definition, shared by every fold)."""

    initial: float = 0.70
    floor: float = 0.50
    ceiling: float = 0.95
    high: float = 0.85
    step: float = 0.02
    window: int = 10


QUALITY_RULE = QualityRule()


class QualityGate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The quality threshold now, the recent scores it follows, and what it judged."""

    threshold: float = QUALITY_RULE.initial
    recent: tuple[float, ...] = ()
    judged: int = 0
    downgraded: int = 0

    @property
    def average(self) -> float | None:
        """Average of the recent scores, None before any."""
        return sum(self.recent) / len(self.recent) if self.recent else None


def next_threshold(threshold: float, average: float, rule: QualityRule = QUALITY_RULE) -> float:
    """The threshold after one judged score: tighten while the average is high, loosen when it falls below."""
    if average >= rule.high:
        return round(min(threshold + rule.step, rule.ceiling), 6)
    if average < threshold:
        return round(max(threshold - rule.step, rule.floor), 6)
    return threshold


def judge(gate: QualityGate, e: ev.TaskCompleted, rule: QualityRule = QUALITY_RULE) -> tuple[QualityGate, rec.Outcome]:
    """The gate after one completion, and the completion's judged outcome.

    Only run completions that did not fail and report a quality are judged; a success below the
    threshold (as it stood before this completion) is ``partial``.
    """
    if e.phase != "run" or e.quality is None or e.outcome == "failure":
        return gate, e.outcome
    outcome: rec.Outcome = "partial" if e.outcome == "success" and e.quality < gate.threshold else e.outcome
    recent = (*gate.recent, e.quality)[-rule.window :]
    average = sum(recent) / len(recent)
    return (
        QualityGate(
            threshold=next_threshold(gate.threshold, average, rule),
            recent=recent,
            judged=gate.judged + 1,
            downgraded=gate.downgraded + (outcome != e.outcome),
        ),
        outcome,
    )


def judged_event(gate: QualityGate, e: ev.TaskCompleted) -> tuple[QualityGate, ev.TaskCompleted]:
    """`judge`, returning the completion with its judged outcome (the same object when unchanged).

    A downgraded completion says why in its ``error`` (views show it as the task's reason).
    """
    if e.quality is None:  # not judged (`judge`): the common case, without the calls
        return gate, e
    before = gate.threshold
    gate, outcome = judge(gate, e)
    if outcome == e.outcome:
        return gate, e
    why = f"partial: quality {e.quality:.2f} below the threshold {before:.2f}"
    return gate, msgspec.structs.replace(e, outcome=outcome, error=why)

"""Careful mode: when confidence falls the system watches more closely and takes smaller steps (pure).

Confidence is the confidence view's (`projections.confidence`: predictions checked against
outcomes), so replay sees what the decider saw; whether careful mode is on is the same view's
(``ConfidenceSummary.careful``, set and cleared by this module's events). One of three actions:

- **enter** (`CarefulModeEntered`): not careful and confidence < ``enter_below``. Every agent
  then appends its `NodeObserved` heartbeat every ``observe_interval_s`` (or its own interval,
  if shorter), and dispatch takes the ready tasks shortest estimate first (the order cautious
  autonomy uses, `orchestrator.decision.readyset.ranked`), so each finished task is evidence
  sooner and a wrong prediction costs less;
- **leave** (`CarefulModeLeft`): careful and confidence ≥ ``leave_at`` (higher than
  ``enter_below``: the gap is the hysteresis, one episode does not flap); both revert;
- **keep** (nothing appended) otherwise: one event per episode each way.

Turned off (``enabled = false``) careful mode never starts, and an episode already on is left.

The decider appends either event guarded by the last sequence of ``ev.system.careful.>``, so two
deciders never both enter one episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from orchestrator.decision.pause import Action, Stamp
from projections.confidence.entries import Careful
from schemas import actions as act

CarefulEvent = act.CarefulModeEntered | act.CarefulModeLeft


@dataclass(frozen=True)
class CarefulConfig:
    """Thresholds of careful mode (``[decider.careful]``)."""

    enabled: bool = True
    enter_below: float = 0.8  # confidence under which careful mode starts (cautious autonomy's threshold)
    leave_at: float = 0.9  # confidence at which it ends (hysteresis: above enter_below)
    observe_interval_s: float = 1.0  # the agents' heartbeat interval meanwhile (theirs, 5 s by default, otherwise)

    def __post_init__(self) -> None:
        if not 0.0 <= self.enter_below <= self.leave_at <= 1.0:
            raise ValueError(f"careful: need 0 <= enter_below ({self.enter_below}) <= leave_at ({self.leave_at}) <= 1")
        if not self.observe_interval_s > 0:
            raise ValueError(f"careful: observe_interval_s ({self.observe_interval_s}) must be > 0")


def judge(
    confidence: float, careful: Careful | None, now: datetime, cc: CarefulConfig, stamp: Stamp
) -> CarefulEvent | None:
    """The action: enter, leave, or None (keep); off (``enabled`` false), an episode on is left."""
    common = dict(occurred_at=now, now=now, confidence=round(confidence, 6), **msgspec.structs.asdict(stamp))
    if not cc.enabled:
        if careful is None:
            return None
        reason = "careful mode is off in the decider's config: agents back to their own interval, usual order"
        return act.CarefulModeLeft(event_id=f"careful:leave:{now.isoformat()}", threshold=cc.leave_at, reason=reason,
                                  **common)  # fmt: skip
    if careful is None:
        if confidence >= cc.enter_below:
            return None
        reason = (
            f"confidence {confidence:.2f} < {cc.enter_below:.2f}: agents observe every {cc.observe_interval_s:g}s, "
            f"shortest estimate first, until confidence is back to {cc.leave_at:.2f}"
        )
        return act.CarefulModeEntered(event_id=f"careful:enter:{now.isoformat()}", threshold=cc.enter_below,
                                     observe_interval_s=cc.observe_interval_s, reason=reason, **common)  # fmt: skip
    if confidence < cc.leave_at:
        return None
    reason = f"confidence {confidence:.2f} >= {cc.leave_at:.2f}: agents back to their own interval, usual order"
    return act.CarefulModeLeft(event_id=f"careful:leave:{now.isoformat()}", threshold=cc.leave_at, reason=reason,
                              **common)  # fmt: skip


def careful_actions(
    confidence: float, careful: Careful | None, careful_seq: int, now: datetime, cc: CarefulConfig, stamp: Stamp
) -> list[Action]:
    """The round's careful-mode action (none, or one), guarded by the last careful-mode event."""
    e = judge(confidence, careful, now, cc, stamp)
    return [] if e is None else [Action(event=e, expected_seq=careful_seq)]


def careful_now(careful: Careful | None, actions: list[Action]) -> bool:
    """Whether a round's dispatches are careful: as the view says, or as this round's own action made it."""
    for a in actions:
        if isinstance(a.event, act.CarefulModeEntered):
            return True
        if isinstance(a.event, act.CarefulModeLeft):
            return False
    return careful is not None


NOTE = "careful mode: shortest estimate first"  # in a careful dispatch's strategy

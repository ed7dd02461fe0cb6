"""The decider's configuration from a ``[decider]`` table (pure: the table is already parsed).

Top-level keys are the scoring knobs (`ScoringConfig`: ``policy``, ``aging_per_s``, ...) and
``node_ttl_s``, ``max_dispatches``, ``unschedulable_after_s``; each action of the loop has its
own sub-table (``[decider.pause]``: `PauseConfig`, ``[decider.timeouts]``: `TimeoutConfig`,
``[decider.careful]``: `CarefulConfig`, ``[decider.scaling]``: `ScalingConfig`). An unknown key
is an error naming it and the keys that are known.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.decision.careful import CarefulConfig
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.pause import PauseConfig
from orchestrator.decision.scaling import ScalingConfig
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.timeouts import TimeoutConfig

TOP_KEYS = ("node_ttl_s", "max_dispatches", "unschedulable_after_s")
ACTIONS: dict[str, type[Any]] = {
    "pause": PauseConfig,
    "timeouts": TimeoutConfig,
    "careful": CarefulConfig,
    "scaling": ScalingConfig,
}


def _names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def build(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    """``cls(**table)``; an unknown key or a bad value is a `ValueError` naming ``where``."""
    unknown = sorted(set(table) - _names(cls))
    if unknown:
        known = ", ".join(sorted(_names(cls)))
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    try:
        return cls(**table)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e


def decider_config(table: dict[str, Any], where: str = "[decider]", **fixed: Any) -> DeciderConfig:
    """A `DeciderConfig` from a ``[decider]`` table; ``fixed``: fields set by the caller (id, policy)."""
    scoring_keys = _names(ScoringConfig)
    scoring = {k: v for k, v in table.items() if k in scoring_keys}
    top = {k: v for k, v in table.items() if k in TOP_KEYS}
    nested = {k: v for k, v in table.items() if k in ACTIONS}
    unknown = sorted(set(table) - scoring_keys - set(TOP_KEYS) - set(ACTIONS))
    if unknown:
        known = ", ".join(sorted([*scoring_keys, *TOP_KEYS, *ACTIONS]))
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    if "policy" in fixed:
        scoring["policy"] = fixed.pop("policy")
    parts = {name: build(ACTIONS[name], dict(sub), f"{where}.{name}") for name, sub in nested.items()}
    return DeciderConfig(scoring=build(ScoringConfig, scoring, where), **top, **parts, **fixed)

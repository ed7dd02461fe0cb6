"""Pause on error rate: a graph's (or every graph's) new dispatches stop when its decayed failure
rate crosses a threshold, and start again under a lower one (pure).

The rates are the readiness view's (`projections.readiness.health`: one sample per run
completion, 1 for a failure, decayed with a ten-minute half-life), so replay sees what the
decider saw. For each scope, every graph together first (``""``), then each unfinished graph
by id, one of three actions is chosen:

- **pause** (`GraphPaused`): not paused, at least ``min_completions`` completions, and the
  rate ≥ ``threshold``; an `Alert` goes with it for a person. Every graph is paused together
  only when ``min_graphs`` (2) graphs are at the threshold at once: one broken graph is that
  graph's problem (it is paused alone), several at once look like the system's (a node image,
  a shared service), and new graphs should not start into it;
- **resume** (`GraphResumed`): paused by the decider and the rate < ``resume_below`` (the gap
  between the two thresholds is the hysteresis: a rate hovering at the threshold does not flap);
  a person's pause is lifted only by a person (``niyantra resume GRAPH``);
- **keep** (nothing appended) otherwise.

A paused scope is half-open after ``probe_after_s``: up to ``probes`` of its tasks may run at a
time (the highest-priority ones, as the ready set orders them), so a fixed build shows itself
with successes that bring the rate under ``resume_below``; without them a graph whose every
task had stopped could never show it recovered. Paused tasks wait with the pause as their reason
(`niyantra why`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import msgspec

from projections.decay import Decayed
from projections.readiness.entries import GraphView, Health, Pause
from schemas import actions as act
from schemas.ids import token


@dataclass(frozen=True)
class PauseConfig:
    """Thresholds of the pause (``[decider.pause]``)."""

    enabled: bool = True
    threshold: float = 0.5  # the decayed failure rate that pauses
    resume_below: float = 0.2  # the rate under which the decider's pause ends
    min_completions: int = 5  # completions a scope needs before its rate pauses anything
    probe_after_s: float = 30.0  # a paused scope runs probes after this long
    probes: int = 1  # tasks of a paused scope that may run at a time once it is half-open
    min_graphs: int = 2  # graphs at the threshold at once before every graph is paused (the system is failing)

    def __post_init__(self) -> None:
        if not 0.0 <= self.resume_below <= self.threshold <= 1.0:
            raise ValueError(
                f"pause: need 0 <= resume_below ({self.resume_below}) <= threshold ({self.threshold}) <= 1"
            )


class Stamp(msgspec.Struct, frozen=True, kw_only=True):
    """What every decision of a round records about its inputs and its maker."""

    view_seqs: dict[str, int]
    decider_id: str
    decider_version: str
    policy: str


class Action(msgspec.Struct, frozen=True, kw_only=True):
    """A non-dispatch decision to append, guarded by its scope's last event (a pause's, careful mode's)."""

    event: act.GraphPaused | act.GraphResumed | act.CarefulModeEntered | act.CarefulModeLeft
    expected_seq: int


def _scope(graph_id: str) -> str:
    return f"graph {graph_id}" if graph_id else "every graph"


def judge(
    graph_id: str, failures: Decayed, pause: Pause | None, now: datetime, pc: PauseConfig, stamp: Stamp
) -> act.GraphPaused | act.GraphResumed | None:
    """The action for one scope: a pause, a resume, or None (keep)."""
    rate = failures.mean
    if rate is None:
        return None
    weight = failures.w  # the decayed number of completions as of the newest: it does not move with time alone
    common = dict(occurred_at=now, graph_id=graph_id, now=now, **msgspec.structs.asdict(stamp))
    scope, rid = _scope(graph_id), token(graph_id) if graph_id else "*"
    if pause is None:
        if failures.n < pc.min_completions or rate < pc.threshold:
            return None
        how = f"niyantra resume {graph_id}" if graph_id else "niyantra resume '*'"
        reason = (
            f"failure rate {rate:.2f} over {weight:.1f} recent completions >= {pc.threshold:.2f}: new dispatches of "
            f"{scope} paused until it falls under {pc.resume_below:.2f} (probes after {pc.probe_after_s:.0f}s) or {how}"
        )
        return act.GraphPaused(event_id=f"pause:{rid}:{now.isoformat()}", rate=round(rate, 6), threshold=pc.threshold,
                              weight=round(weight, 6), reason=reason, **common)  # fmt: skip
    if pause.by or rate >= pc.resume_below:
        return None
    reason = f"failure rate {rate:.2f} < {pc.resume_below:.2f}: dispatches of {scope} resume"
    return act.GraphResumed(event_id=f"resume:{rid}:{now.isoformat()}", rate=round(rate, 6),
                           threshold=pc.resume_below, reason=reason, **common)  # fmt: skip


def pause_actions(
    graphs: Mapping[str, GraphView], health: Health | None, now: datetime, pc: PauseConfig, stamp: Stamp
) -> list[Action]:
    """The round's pauses and resumes: every graph together first, then each unfinished graph by id."""
    if not pc.enabled:
        return []
    out: list[Action] = []
    if health is not None and (health.pause is not None or _failing(graphs, pc) >= pc.min_graphs):
        e = judge("", health.failures, health.pause, now, pc, stamp)
        if e is not None:
            out.append(Action(event=e, expected_seq=health.pause_seq))
    for gid in sorted(graphs):
        g = graphs[gid]
        if g.done or (g.pause is None and g.failures.n == 0):
            continue
        e = judge(gid, g.failures, g.pause, now, pc, stamp)
        if e is not None:
            out.append(Action(event=e, expected_seq=g.pause_seq))
    return out


def _failing(graphs: Mapping[str, GraphView], pc: PauseConfig) -> int:
    """Graphs whose own rate is at the threshold (a system-wide pause needs ``min_graphs`` of them)."""
    return sum(1 for g in graphs.values() if g.failures.n and (g.failures.mean or 0.0) >= pc.threshold)


def alert_of(e: act.GraphPaused) -> act.Alert:
    """The `Alert` a person gets with a pause."""
    return act.Alert(
        event_id=f"alert:{e.event_id}",
        occurred_at=e.occurred_at,
        causation_id=e.event_id,
        kind="pause",
        about=e.graph_id or "*",
        message=e.reason,
    )


class Paused:
    """Which ready tasks a round holds back for a pause, and the probes it lets through."""

    def __init__(self, graphs: Mapping[str, GraphView], health: Health | None, actions: list[Action],
                 now: datetime, pc: PauseConfig) -> None:  # fmt: skip
        pauses: dict[str, Pause | None] = {"": health.pause if health else None}
        pauses.update({g: v.pause for g, v in graphs.items() if v.pause is not None})
        for a in actions:  # this round's own pauses and resumes hold for its dispatches already
            e = a.event
            if not isinstance(e, act.GraphPaused | act.GraphResumed):
                continue  # (careful mode's)
            paused = isinstance(e, act.GraphPaused)
            pauses[e.graph_id] = Pause(since=now, reason=e.reason, rate=e.rate) if paused else None
        self.pauses = {k: p for k, p in pauses.items() if p is not None}
        self.budget: dict[str, int] = {}
        for scope, p in self.pauses.items():
            probing = not p.by and (now - p.since).total_seconds() >= pc.probe_after_s  # a person's: none
            running = _running(graphs.values() if not scope else [graphs[scope]] if scope in graphs else [])
            self.budget[scope] = max(pc.probes - running, 0) if probing else 0

    def __bool__(self) -> bool:
        return bool(self.pauses)

    def reason(self, graph_id: str) -> str | None:
        """Why a task of ``graph_id`` may not be dispatched (None: it may, or as a probe)."""
        scopes = [s for s in ("", graph_id) if s in self.pauses]
        if not scopes or all(self.budget[s] > 0 for s in scopes):
            return None
        return f"paused: {self.pauses[scopes[-1]].reason}"

    def take(self, graph_id: str) -> bool:
        """A task of ``graph_id`` is dispatched: True when it is a probe of a paused scope."""
        scopes = [s for s in ("", graph_id) if s in self.pauses]
        for s in scopes:
            self.budget[s] -= 1
        return bool(scopes)


def _running(graphs: Iterable[GraphView]) -> int:
    return sum(g.counts.get("dispatched", 0) + g.counts.get("running", 0) for g in graphs)

"""An in-memory decider loop for the actions' tests: events appended to a list as the stream,
the views folded from it by the replayer (the projections' code), `decide_round` each round and
its decisions appended, the runs they start completed by the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from orchestrator.decision.decide import DeciderConfig, decide_round
from orchestrator.decision.pause import alert_of
from orchestrator.replay.replayer import Replayer
from orchestrator.writeside.eventlog import StoredMessage
from schemas import actions as act
from schemas import codec
from schemas import events as ev
from schemas import subjects as S


class Loop:
    """The stream, and the rounds and runs a test drives over it."""

    def __init__(self, config: DeciderConfig, *events: object, confidence: bool = False) -> None:
        self.config = config
        self.confidence = confidence  # the views include the confidence view (careful mode reads it)
        self.messages: list[StoredMessage] = []
        self.running: list[ev.TaskDispatched] = []
        for e in events:
            self.append(e)

    def append(self, e: object) -> int:
        seq = len(self.messages) + 1
        self.messages.append(StoredMessage(seq=seq, subject=S.route(e)[1], headers={}, data=codec.encode(e)))
        return seq

    def views(self):
        seq = self.messages[-1].seq
        seqs = {"readiness": seq, "node-scores": seq} | ({"confidence": seq} if self.confidence else {})
        return Replayer(self.messages).views(seqs, self.config.scoring)

    def round(self, now: datetime) -> tuple[list[object], list[ev.TaskDispatched]]:
        """One decider round at ``now``: its actions (and a pause's alert) and dispatches appended."""
        actions, dispatches = decide_round(self.views(), now, self.config)
        for a in actions:
            self.append(a.event)
            if isinstance(a.event, act.GraphPaused):
                self.append(alert_of(a.event))
        out = []
        for d in dispatches:
            assert isinstance(d.event, ev.TaskDispatched)
            self.append(d.event)
            out.append(d.event)
        self.running += out
        return [a.event for a in actions], out

    def finish(self, now: datetime, outcome: Callable[[ev.TaskDispatched], str], duration_s: float = 1.0) -> None:
        """Every running attempt starts and completes at ``now`` with ``outcome(dispatch)``."""
        for d in self.running:
            common = dict(graph_id=d.graph_id, task_id=d.task_id, node_id=d.node_id, attempt=d.attempt)
            self.append(ev.TaskStarted(event_id=f"st:{d.event_id}", occurred_at=now, **common))
            result = outcome(d)
            self.append(
                ev.TaskCompleted(
                    event_id=f"c:{d.event_id}",
                    occurred_at=now,
                    outcome=result,  # type: ignore[arg-type]
                    exit_code=0 if result == "success" else 1,
                    duration_s=duration_s,
                    error="" if result == "success" else "exit 1",
                    **common,
                )
            )
        self.running = []

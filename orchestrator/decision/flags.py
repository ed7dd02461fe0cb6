"""Flagged patterns as the decider sees them at ``now`` (pure): nodes to avoid, work to escalate.

The views hold each pattern's failure streak (`projections.feedback`); whether it is flagged
depends on ``now`` (the cool-down), which only the decider and the operator commands pass in.

- **task type × node** flagged: the node is skipped for tasks of that type, with the reason in
  words (``avoided: type compile failed 3 times in a row on node-2 (...)``), as long as another
  usable node (alive, labels matching; busy or not) is not flagged for the type. When every
  usable node is flagged the task is *escalated*: it waits for ``niyantra approve``.
- **command × error signature** flagged: the command itself is broken the same way wherever it
  ran; a task with that command is escalated, whatever the nodes.

An approved task goes ahead (on the best node, flagged or not when all are), and its dispatch
records the escalation and the approval in ``strategy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.decision.scoring import ScoringConfig
from projections.feedback import flag_words, is_flagged
from projections.node_scores.fold import UNTYPED, NodeView
from projections.node_scores.patterns import PatternView
from projections.readiness.fold import TaskView


@dataclass(frozen=True)
class FlagIndex:
    """Every pattern flagged at one ``now``: by task type the flagged nodes, by command the reason."""

    by_type: dict[str, dict[str, str]] = field(default_factory=dict)  # type → node → reason
    by_command: dict[str, str] = field(default_factory=dict)  # command → reason

    def __bool__(self) -> bool:
        return bool(self.by_type or self.by_command)

    def nodes_for(self, task: TaskView) -> dict[str, str]:
        """The nodes flagged for the task's type, each with its reason."""
        return self.by_type.get(task.type or UNTYPED, {})


def flag_index(
    nodes: Mapping[str, NodeView], patterns: Mapping[str, PatternView], now: datetime, cfg: ScoringConfig
) -> FlagIndex:
    """The patterns flagged at ``now`` (iteration over sorted keys: the words are deterministic)."""
    by_type: dict[str, dict[str, str]] = {}
    bound = cfg.flag_after
    for node in nodes.values():  # every round: a cheap pass first, words only for what is flagged
        if any(s.streak.failures >= bound for s in node.scores.values()):
            for task_type, score in sorted(node.scores.items()):
                if is_flagged(score.streak, now, bound, cfg.flag_cooldown_s):
                    words = flag_words(score.streak, now, cfg.flag_cooldown_s)
                    by_type.setdefault(task_type, {})[node.node_id] = (
                        f"avoided: type {task_type} {words} on {node.node_id}"
                    )
    for task_type, flagged in by_type.items():
        by_type[task_type] = dict(sorted(flagged.items()))
    by_command: dict[str, str] = {}
    for key in sorted(k for k, p in patterns.items() if p.streak.failures >= bound):
        p = patterns[key]
        if p.command not in by_command and is_flagged(p.streak, now, bound, cfg.flag_cooldown_s):
            words = flag_words(p.streak, now, cfg.flag_cooldown_s)
            by_command[p.command] = f"its command {words} with {p.signature!r} (on {', '.join(p.nodes)})"
    return FlagIndex(by_type, by_command)


def escalation_reason(task: TaskView, usable: list[str], index: FlagIndex) -> str | None:
    """Why the task needs a person's approval to run (approval aside), or None.

    ``usable`` are the nodes that could take the task at all (alive, labels matching).
    """
    why = index.by_command.get(task.command)
    if why is not None:
        return why
    flagged = index.nodes_for(task)
    if flagged and usable and all(n in flagged for n in usable):
        t = task.type or UNTYPED
        return f"type {t} is flagged on every usable node ({', '.join(usable)}): " + "; ".join(
            flagged[n].removeprefix("avoided: ") for n in usable
        )
    return None


def approve_hint(task: TaskView) -> str:
    """The command a person runs to let an escalated task go."""
    return f"niyantra approve {task.graph_id}/{task.task_id} --by NAME"


def flagged_patterns(
    nodes: Mapping[str, NodeView], patterns: Mapping[str, PatternView], now: datetime, cfg: ScoringConfig
) -> list[dict[str, Any]]:
    """Every pattern flagged at ``now``, for `niyantra status`/snapshot (type × node, then commands)."""
    out: list[dict[str, Any]] = []
    for nid in sorted(nodes):
        for task_type, score in sorted(nodes[nid].scores.items()):
            s = score.streak
            if is_flagged(s, now, cfg.flag_after, cfg.flag_cooldown_s):
                out.append({"kind": "type×node", "type": task_type, "node": nid, "failures": s.failures,
                            "last_error": s.last_error, "what": flag_words(s, now, cfg.flag_cooldown_s)})  # fmt: skip
    for key in sorted(patterns):
        p = patterns[key]
        if is_flagged(p.streak, now, cfg.flag_after, cfg.flag_cooldown_s):
            out.append({"kind": "command×signature", "command": p.command, "signature": p.signature,
                        "nodes": list(p.nodes), "failures": p.streak.failures, "last_task": p.last_task,
                        "what": flag_words(p.streak, now, cfg.flag_cooldown_s)})  # fmt: skip
    return out

"""What an agent reports about a run: the quality protocol and the result event (pure).

Quality protocol: the agent passes ``NIYANTRA_QUALITY_FILE``, a path outside the workspace. A
task that wants to report how good its result is writes one number in [0, 1] there (``echo
0.87 > "$NIYANTRA_QUALITY_FILE"``). A missing or empty file means no score; anything else that
is not such a number is ignored with a note in the task's log. The score never changes the
outcome; it is data for the feedback loop.

Outcome and retryability (STYLE 18: the agent marks each failure):

| what happened                         | outcome | retryable |
|---------------------------------------|---------|-----------|
| exit 0, within scope, outputs stored   | success | -         |
| inputs not laid out, outputs not stored | failure | by cause  |
| cancelled (task or graph)              | failure | no        |
| wrote outside its scope                | failure | no        |
| exit 126/127 (not executable/no such)  | failure | no        |
| timed out, other exit code, no start   | failure | yes       |

By cause: a missing output, a path out of the workspace, a bad manifest are not retryable; a
store that cannot be reached, a blob missing or corrupt in the store are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from node_agent.output import redact_text
from node_agent.runner import RunResult
from node_agent.scope import Change, describe
from schemas import events as ev
from schemas import records as rec
from schemas.ids import task_ref

TAIL_CHARS = 2000
NOT_RETRYABLE_EXIT = frozenset({126, 127})


def parse_quality(text: str) -> tuple[float | None, str]:
    """The score in a quality file's text, or None and a note saying why it was ignored."""
    s = text.strip()
    if not s:
        return None, ""
    try:
        q = float(s.split()[0])
    except ValueError:
        return None, f"quality file ignored: {s[:40]!r} is not a number"
    if not math.isfinite(q) or not 0.0 <= q <= 1.0:
        return None, f"quality file ignored: {q} is not in [0, 1]"
    return q, ""


def read_quality(path: Path) -> tuple[float | None, str]:
    """The score the task wrote to ``path``, if any (see `parse_quality`)."""
    try:
        return parse_quality(path.read_text(errors="replace")[:256])
    except FileNotFoundError:
        return None, ""
    except OSError as e:
        return None, f"quality file ignored: {e}"


@dataclass(frozen=True)
class RunReport:
    """Everything about one finished run that goes into its result event."""

    result: RunResult
    output: bytes = b""
    violations: tuple[Change, ...] = ()
    quality: float | None = None
    log_subject: str = ""
    cancel_reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    outputs: tuple[rec.ArtifactRecord, ...] = ()  # the declared outputs as stored
    data_error: str = ""  # inputs not laid out, or outputs not stored (`node_agent.artifacts.publish`)
    data_retryable: bool = True
    fetched_bytes: int = 0  # inputs the node's cache lacked, fetched before the run (`artifacts.stage`)
    fetch_seconds: float = 0.0


def outcome_of(r: RunReport) -> tuple[rec.Outcome, str, bool]:
    """(outcome, error, retryable) of a run, by the table in the module docstring."""
    res = r.result
    if res.cancelled:
        why = f": {r.cancel_reason}" if r.cancel_reason else ""
        return "failure", f"cancelled{why}", False
    if r.violations:
        return "failure", describe(r.violations), False
    if r.data_error:
        return "failure", r.data_error, r.data_retryable
    if res.timed_out or res.exit_code is None:
        return "failure", res.error or "did not run", True
    if res.exit_code != 0:
        return "failure", res.error or f"exit code {res.exit_code}", res.exit_code not in NOT_RETRYABLE_EXIT
    return "success", "", True


def result_event_id(d: ev.TaskDispatched) -> str:
    """Deterministic id (and Msg-Id) of the result of a dispatch's run."""
    kind = "complete" if d.phase == "run" else d.phase
    return f"{kind}:{task_ref(d.graph_id, d.task_id)}:{d.attempt}"


def completion(d: ev.TaskDispatched, r: RunReport, at: datetime, secrets: tuple[str, ...] = ()) -> ev.TaskCompleted:
    """The TaskCompleted event for a finished run (or preflight) of dispatch ``d``.

    ``r.output`` is already redacted; the error and the offending paths (a task may name a
    file after a secret) are redacted here.
    """
    outcome, error, retryable = outcome_of(r)
    return ev.TaskCompleted(
        event_id=result_event_id(d),
        occurred_at=at,
        causation_id=f"start:{task_ref(d.graph_id, d.task_id)}:{d.attempt}" if d.phase == "run" else d.event_id,
        correlation_id=d.graph_id,
        graph_id=d.graph_id,
        task_id=d.task_id,
        node_id=d.node_id,
        attempt=d.attempt,
        outcome=outcome,
        exit_code=r.result.exit_code,
        duration_s=round(r.result.duration_s, 3),
        expected_duration_s=d.expected_duration_s,
        quality=r.quality,
        error=redact_text(error, secrets),
        output_tail=r.output[-TAIL_CHARS:].decode(errors="replace"),
        phase=d.phase,
        scope_violations=tuple(redact_text(c.path, secrets) for c in r.violations),
        log_subject=r.log_subject,
        retryable=retryable if outcome == "failure" else True,
        outputs=r.outputs if outcome == "success" else (),
        fetched_bytes=r.fetched_bytes,
        fetch_seconds=r.fetch_seconds,
    )


def lost(d: ev.TaskDispatched, reason: str, at: datetime) -> ev.TaskLost:
    """The TaskLost event of dispatch ``d`` (same id whoever reports it, so JetStream dedupes)."""
    return ev.TaskLost(
        event_id=f"lost:{task_ref(d.graph_id, d.task_id)}:{d.attempt}",
        occurred_at=at,
        causation_id=d.event_id,
        correlation_id=d.graph_id,
        graph_id=d.graph_id,
        task_id=d.task_id,
        node_id=d.node_id,
        attempt=d.attempt,
        reason=reason,
    )

"""The scaling hook: the decider's shell runs ``[decider.scaling] command`` with each recorded
scaling proposal as JSON on its stdin (`schemas.codec`'s encoding of the event, one object).

The command runs in a shell of its own, in the background (the decider's rounds never wait for
it), with ``HOOK_TIMEOUT_S`` to finish. A failure (it cannot start, exits non-zero, or times
out) is logged and recorded as an `Alert` of kind ``scaling-hook`` naming the proposal and what
went wrong; nothing of it reaches the decider's loop. No command: the proposal is only recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec

from orchestrator.errors import ConcurrencyConflict
from orchestrator.writeside.eventlog import EventLog
from schemas import actions as act

log = logging.getLogger("niyantra.decider.scaling")
Proposal = act.NodeScaleDownProposed | act.NodeScaleUpProposed
HOOK_TIMEOUT_S = 60.0
_running: set[asyncio.Task[None]] = set()  # the hooks in flight (a task needs a reference to run)


def payload(e: Proposal) -> bytes:
    """What the hook reads on stdin: the proposal, with its type (``"type"``)."""
    return msgspec.json.encode({"type": type(e).__name__, **msgspec.to_builtins(e)})


async def run_hook(command: str, e: Proposal, timeout: float = HOOK_TIMEOUT_S) -> str | None:
    """Run ``command`` with the proposal on stdin; what went wrong in words, or None."""
    try:
        proc = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as err:
        return f"could not start: {err}"
    try:
        _, err_out = await asyncio.wait_for(proc.communicate(payload(e)), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return f"timed out after {timeout:.0f}s"
    if proc.returncode != 0:
        tail = err_out.decode(errors="replace").strip()[-300:]
        return f"exit status {proc.returncode}" + (f": {tail}" if tail else "")
    return None


def _about(e: Proposal) -> str:
    """The node a scale-down is about, or ``+N nodes`` of a scale-up."""
    return e.node_id if isinstance(e, act.NodeScaleDownProposed) else f"+{e.nodes} node(s)"


async def _hook(eventlog: EventLog, command: str, e: Proposal) -> None:
    try:
        problem = await run_hook(command, e)
    except Exception as err:  # noqa: BLE001 - a hook never takes the decider down
        problem = f"{type(err).__name__}: {err}"
    if problem is None:
        log.info("scaling hook ran for %s", e.event_id)
        return
    log.warning("scaling hook for %s failed: %s", e.event_id, problem)
    alert = act.Alert(
        event_id=f"alert:hook:{e.event_id}",
        occurred_at=e.occurred_at,
        causation_id=e.event_id,
        kind="scaling-hook",
        about=_about(e),
        message=f"scaling hook `{command}` for {type(e).__name__} of {_about(e)} failed: {problem}",
    )
    with contextlib.suppress(ConcurrencyConflict, Exception):  # recorded once; an unreachable log: logged above
        await eventlog.append_event(alert)


def start_hook(eventlog: EventLog, command: str, e: Proposal) -> None:
    """Run the hook for a recorded proposal in the background (nothing when ``command`` is "")."""
    if not command:
        return
    task = asyncio.get_running_loop().create_task(_hook(eventlog, command, e))
    _running.add(task)
    task.add_done_callback(_running.discard)

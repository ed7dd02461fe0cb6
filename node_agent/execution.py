"""One run of a dispatch on this machine: workspace, environment, scope snapshots, the process,
its redacted output stored in LOGS, and the quality score — everything but the events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from node_agent import scope as sc
from node_agent.environment import DEFAULT_PASS, DEFAULT_SECRET_PATTERNS, secret_values, task_environment
from node_agent.errors import LogStoreUnavailable
from node_agent.logstore import LogStore
from node_agent.output import CappedOutput, Redactor
from node_agent.report import RunReport, read_quality
from node_agent.runner import run_command
from node_agent.workspace import HASH_LIMIT, WorkspaceMode, run_dir, snapshot, workspace_dir
from schemas import events as ev
from schemas import subjects as S

log = logging.getLogger("niyantra.agent")
OUTPUT_CAP = 64 * 1024


@dataclass(frozen=True)
class ExecutionSettings:
    """How this agent runs tasks (part of `AgentSettings`)."""

    workdir: Path = Path(".niyantra/work")
    workspace: WorkspaceMode = "task"
    env_pass: tuple[str, ...] = DEFAULT_PASS
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    output_cap: int = OUTPUT_CAP
    grace_s: float = 5.0
    hash_limit: int = HASH_LIMIT
    agent_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


class Execution:
    """Runs dispatches for one node, each with its own cancel switch."""

    def __init__(self, settings: ExecutionSettings, node_id: str, logs: LogStore) -> None:
        self.s = settings
        self.node_id = node_id
        self.logs = logs
        self.secrets = secret_values(settings.agent_env, settings.secret_patterns)

    def environment(self, d: ev.TaskDispatched, workspace: Path, quality_file: Path) -> dict[str, str]:
        """The task's environment: the allowlist plus the agent's NIYANTRA_* variables."""
        own = {
            "NIYANTRA_GRAPH_ID": d.graph_id,
            "NIYANTRA_TASK_ID": d.task_id,
            "NIYANTRA_ATTEMPT": str(d.attempt),
            "NIYANTRA_NODE_ID": self.node_id,
            "NIYANTRA_PHASE": d.phase,
            "NIYANTRA_WORKSPACE": str(workspace),
            "NIYANTRA_QUALITY_FILE": str(quality_file),
        }
        return task_environment(self.s.agent_env, d.env, own, default_pass=self.s.env_pass)

    async def run(self, d: ev.TaskDispatched, cancel: asyncio.Event, cancel_reason: list[str]) -> RunReport:
        """Run the dispatch's command to its end (exit, timeout or cancel) and store its output."""
        workdir = self.s.workdir.resolve()
        workspace = workspace_dir(workdir, self.s.workspace, self.node_id, d.graph_id, d.task_id)
        meta = run_dir(workdir, self.node_id, d.graph_id, d.task_id, d.attempt, d.phase)
        quality_file = meta / "quality"
        quality_file.unlink(missing_ok=True)
        before = await asyncio.to_thread(snapshot, workspace, hash_limit=self.s.hash_limit) if d.scope else {}
        redactor, capture = Redactor(self.secrets), CappedOutput(self.s.output_cap)
        result = await run_command(
            d.command,
            cwd=workspace,
            env=self.environment(d, workspace, quality_file),
            timeout_s=d.timeout_s,
            sink=lambda chunk: capture.feed(redactor.feed(chunk)),
            cancel=cancel,
            grace_s=self.s.grace_s,
        )
        capture.feed(redactor.close())
        violations: tuple[sc.Change, ...] = ()
        if d.scope:
            after = await asyncio.to_thread(snapshot, workspace, hash_limit=self.s.hash_limit)
            violations = tuple(sc.violations(sc.diff(before, after), d.scope))
        quality, note = read_quality(quality_file)
        output = capture.value()
        if note:
            output += f"\n[niyantra: {note}]\n".encode()
        shutil.rmtree(meta, ignore_errors=True)
        subject = await self._store(d, output, result.exit_code)
        return RunReport(
            result=result,
            output=output,
            violations=violations,
            quality=quality,
            log_subject=subject,
            cancel_reason=cancel_reason[0] if cancel_reason else "",
            notes=(note,) if note else (),
        )

    async def _store(self, d: ev.TaskDispatched, output: bytes, exit_code: int | None) -> str:
        subject = S.log_subject(d.graph_id, d.task_id, d.attempt, d.phase)
        try:
            await self.logs.put(subject, output, node_id=self.node_id, exit_code=exit_code)
        except LogStoreUnavailable as e:  # the result matters more than its log: report without it
            log.warning("%s", e)
            return ""
        return subject

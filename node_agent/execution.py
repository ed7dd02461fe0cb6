"""One run of a dispatch on this machine: workspace (its inputs laid out, its outputs stored after:
`node_agent.artifacts.publish`), environment, scope snapshots, the process, its redacted output
stored in LOGS, and the quality score — everything but the events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from node_agent import scope as sc
from node_agent.artifacts.layout import LinkMode
from node_agent.artifacts.publish import DataFailure, TaskData
from node_agent.environment import DEFAULT_PASS, DEFAULT_SECRET_PATTERNS, EnvironmentCache, secret_values
from node_agent.errors import LogStoreUnavailable
from node_agent.logstore import LogStore
from node_agent.output import CappedOutput, Redactor
from node_agent.report import RunReport, outcome_of, read_quality
from node_agent.runner import RunResult, run_command
from node_agent.workspace import HASH_LIMIT, WorkspaceMode, quality_path, snapshot, workspace_dir
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
    layout: LinkMode | None = None  # how inputs are laid out: hardlink or copy (None: copy as root, else hardlink)
    agent_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def _remove(path: Path) -> None:
    """Remove a run's quality file, if there (a task may have left something else in its place)."""
    try:
        path.unlink()
    except FileNotFoundError:  # the usual case: no file, nothing to say
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except OSError as e:
        log.warning("cannot remove %s: %s", path, e)


class Execution:
    """Runs dispatches for one node, each with its own cancel switch."""

    def __init__(self, settings: ExecutionSettings, node_id: str, logs: LogStore, data: TaskData | None = None) -> None:
        self.s = settings
        self.node_id = node_id
        self.logs = logs
        self.data = data  # the artifact store and local cache (None: no inputs laid out, no outputs stored)
        self.secrets = secret_values(settings.agent_env, settings.secret_patterns)
        self._env = EnvironmentCache(settings.agent_env, settings.env_pass)
        self._workdir = settings.workdir.resolve()  # the agent never changes its directory: once

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
        return self._env.task_environment(d.env, own)

    async def run(self, d: ev.TaskDispatched, cancel: asyncio.Event, cancel_reason: list[str]) -> RunReport:
        """Lay out the task's inputs, run its command to its end (exit, timeout or cancel), store its
        declared outputs after a success, and store its output."""
        workdir = self._workdir
        workspace = workspace_dir(workdir, self.s.workspace, self.node_id, d.graph_id, d.task_id)
        fetched = (0, 0.0)
        if self.data is not None:
            staged = await self.data.prepare(d, workspace)
            if isinstance(staged, DataFailure):
                return await self._not_run(d, staged)
            fetched = (staged.fetched_bytes, staged.fetch_seconds)
        quality_file = quality_path(workdir, self.node_id, d.graph_id, d.task_id, d.attempt, d.phase)
        _remove(quality_file)
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
        _remove(quality_file)
        report = RunReport(
            result=result,
            violations=violations,
            quality=quality,
            cancel_reason=cancel_reason[0] if cancel_reason else "",
            notes=(note,) if note else (),
            fetched_bytes=fetched[0],
            fetch_seconds=fetched[1],
        )
        report = await self._publish(d, workspace, report)
        return await self._with_log(d, report, capture.value())

    async def _publish(self, d: ev.TaskDispatched, workspace: Path, report: RunReport) -> RunReport:
        """After a successful run: the declared outputs stored and recorded (or why they were not)."""
        if self.data is None or d.phase != "run" or not d.outputs or outcome_of(report)[0] != "success":
            return report
        stored = await self.data.publish(d, workspace)
        if isinstance(stored, DataFailure):
            return replace(report, data_error=stored.error, data_retryable=stored.retryable)
        return replace(report, outputs=stored)

    async def _not_run(self, d: ev.TaskDispatched, why: DataFailure) -> RunReport:
        report = RunReport(result=RunResult(exit_code=None, duration_s=0.0, error=why.error))
        report = replace(report, data_error=why.error, data_retryable=why.retryable)
        return await self._with_log(d, report, b"")

    async def _with_log(self, d: ev.TaskDispatched, report: RunReport, output: bytes) -> RunReport:
        """The report with its notes appended to the output, and that output stored in LOGS."""
        for note in (*report.notes, report.data_error):
            if note:
                output += f"\n[niyantra: {note}]\n".encode()
        subject = await self._store(d, output, report.result.exit_code)
        return replace(report, output=output, log_subject=subject)

    async def _store(self, d: ev.TaskDispatched, output: bytes, exit_code: int | None) -> str:
        """Store the run's output; a run that printed nothing stores nothing ("": no log subject)."""
        if not output:
            return ""
        subject = S.log_subject(d.graph_id, d.task_id, d.attempt, d.phase)
        try:
            await self.logs.put(subject, output, node_id=self.node_id, exit_code=exit_code)
        except LogStoreUnavailable as e:  # the result matters more than its log: report without it
            log.warning("%s", e)
            return ""
        return subject

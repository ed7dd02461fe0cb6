"""A node's data path around one run: stage its inputs before, store its declared outputs after.

`TaskData` holds the agent's artifact store connection and its local cache
(``<workdir>/.niyantra/<node>.cas``: a node id has no dots, so it never meets a node's run folder;
nothing is shared with another node, as on separate machines) and answers the two questions
`node_agent.execution.Execution` asks:

- `TaskData.prepare`: lay out the dispatch's source tree and dependencies' outputs
  (`node_agent.artifacts.stage`); a failure is a `DataFailure` and the command does not run;
- `TaskData.publish`: after a successful run, collect the declared outputs (paths and globs,
  `node_agent.artifacts.collect`), store each blob (once per content) and return the records
  for `TaskCompleted.outputs`. A missing declared output, a path out of the workspace (``../x``,
  absolute, a symlink out) or a special file fails the task naming the path.

Every blob is whole in the store before the completion that names it is appended (the agent
appends `TaskCompleted` only after `publish` returned): an agent killed while storing leaves
chunks no event names (`ArtifactStore.purge_orphans` removes them), and its attempt is lost and
run again by the watchdog.

Layout mode: ``hardlink`` shares the cache's read-only inode; as root the read-only bit does not
protect it, so the default (``None``) copies when the agent runs as root.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_agent.artifacts.cache import LocalCache
from node_agent.artifacts.collect import collect_outputs
from node_agent.artifacts.errors import ArtifactError
from node_agent.artifacts.layout import LinkMode
from node_agent.artifacts.stage import Staged, stage
from node_agent.artifacts.store import ArtifactStore
from node_agent.workspace import META_DIR
from schemas.events import TaskDispatched
from schemas.records import ArtifactRecord

log = logging.getLogger("niyantra.agent")


@dataclass(frozen=True)
class DataFailure:
    """Why a task's data could not be laid out or stored, and whether running it again may help."""

    error: str
    retryable: bool


def cache_root(workdir: Path, node_id: str) -> Path:
    """The node's local blob cache under its workdir (outside every task workspace)."""
    return workdir / META_DIR / f"{node_id}.cas"


def default_mode() -> LinkMode:
    """``copy`` as root (a read-only hardlink does not stop root writing into the cache), else ``hardlink``."""
    return "copy" if os.geteuid() == 0 else "hardlink"


def needs_data(d: TaskDispatched) -> bool:
    """Tell whether the dispatch names any input to lay out or output to store."""
    return bool(d.source_tree or d.dep_outputs or d.outputs)


class TaskData:
    """The artifact store and local cache of one agent, used around each run."""

    def __init__(self, nc: Any, workdir: Path, node_id: str, mode: LinkMode | None = None) -> None:
        self.store = ArtifactStore(nc)
        self.cache = LocalCache(cache_root(workdir.resolve(), node_id))
        self.mode: LinkMode = mode or default_mode()
        self._ready = False

    async def _store(self) -> ArtifactStore:
        if not self._ready:
            await self.store.ensure_bucket()
            self.cache.clear_partials()
            self._ready = True
        return self.store

    async def prepare(self, d: TaskDispatched, workspace: Path) -> Staged | DataFailure:
        """Lay out the dispatch's source tree and dependencies' outputs in ``workspace``."""
        if not (d.source_tree or d.dep_outputs):
            return Staged()
        try:
            store = await self._store()
            staged = await stage(workspace, d.source_tree, d.dep_outputs, self.cache, store, mode=self.mode)
        except ArtifactError as e:
            log.warning("%s/%s attempt %d: inputs not laid out: %s", d.graph_id, d.task_id, d.attempt, e)
            return DataFailure(f"inputs not laid out: {e}", e.retryable)
        log.debug("%s/%s: %d files laid out, %d blobs fetched", d.graph_id, d.task_id, staged.files, staged.fetched)
        return staged

    async def publish(self, d: TaskDispatched, workspace: Path) -> tuple[ArtifactRecord, ...] | DataFailure:
        """Store the dispatch's declared outputs; their records, or why they could not be stored."""
        if not d.outputs:
            return ()
        try:
            store = await self._store()
            collected = await collect_outputs(workspace, d.outputs, store, cache=self.cache)
        except ArtifactError as e:
            log.warning("%s/%s attempt %d: outputs not stored: %s", d.graph_id, d.task_id, d.attempt, e)
            return DataFailure(f"outputs not stored: {e}", e.retryable)
        except OSError as e:  # unreadable output, full local disk: another node may do better
            log.warning("%s/%s attempt %d: outputs not stored: %s", d.graph_id, d.task_id, d.attempt, e)
            return DataFailure(f"outputs not stored: {e}", True)
        if collected.empty_globs:
            log.info("%s/%s: output globs matched nothing: %s", d.graph_id, d.task_id, ", ".join(collected.empty_globs))
        return collected.records

"""A real build across machines and its cache (issue 22, "Shown when"): examples/zlib (a copy, in
a temp folder) configured with ``cmake -G Ninja``, built by ``niyantra build`` on three agents
whose workdirs share nothing; its ``example`` fetched from the store runs. Built again unchanged:
a new run in which every task is a cache hit and no command runs. One ``.c`` file changed: only
the tasks reading it and what depends on them (from the graph's own dependencies) run again."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import nats

from orchestrator.graphs.ninja.load import import_ninja
from orchestrator.runtime.natsserver import RunningServer
from orchestrator.writeside.eventlog import EventLog
from schemas import eventbase as evbase
from schemas import events as ev
from schemas import subjects as S
from tests.integration.agent_support import niyantra
from tests.integration.ninja_support import ZLIB, configure
from tests.integration.test_data_path import machines

CHANGED = "adler32.c"  # any compiled source file: the expected reruns come from the graph


def dependents(tasks: dict[str, list[str]], roots: set[str]) -> set[str]:
    """``roots`` and every task that depends on one of them, directly or not."""
    users: dict[str, set[str]] = defaultdict(set)
    for tid, deps in tasks.items():
        for d in deps:
            users[d].add(tid)
    seen, todo = set(roots), list(roots)
    while todo:
        for u in users[todo.pop()] - seen:
            seen.add(u)
            todo.append(u)
    return seen


async def _events(url: str, graph: str) -> list[evbase.Event]:
    nc = await nats.connect(url)
    try:
        events = await EventLog(nc).read_events(f"{S.ROOT}.task.{S.token(graph)}.>")
        return [e for _, e in events if getattr(e, "graph_id", None) == graph]
    finally:
        await nc.close()


def _names(events: list[evbase.Event], kind: type) -> set[str]:
    return {e.task_id for e in events if isinstance(e, kind)}


async def _build(url: str, build: Path, expect: str, n: int) -> list[evbase.Event]:
    done = await asyncio.to_thread(niyantra, "build", str(build), "--timeout", "600", url=url, timeout=660)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"submitted graph {expect}: {n} tasks" in done.stdout, done.stdout
    return await _events(url, expect)


async def test_zlib_on_three_machines_then_all_hits_then_one_file_changed(
    nats_server: RunningServer, tmp_path: Path
) -> None:
    url, source, build = nats_server.url, tmp_path / "zlib", tmp_path / "build"
    shutil.copytree(ZLIB, source)  # examples/ is never modified
    configure(source, build)
    doc = import_ninja(build / "build.ninja").document
    tasks = {t["id"]: t["depends_on"] for t in doc["tasks"]}
    n = len(tasks)
    async with machines(url, tmp_path) as workdirs:
        cold = await _build(url, build, "zlib-1", n)
        assert _names(cold, ev.TaskCompleted) == set(tasks)
        assert all(e.outcome == "success" for e in cold if isinstance(e, ev.TaskCompleted))
        ran_on = {e.node_id for e in cold if isinstance(e, ev.TaskStarted)}
        assert len(ran_on) >= 2  # the build really spread over machines that share nothing

        cached = await _build(url, build, "zlib-2", n)
        hits = [e for e in cached if isinstance(e, ev.TaskCacheHit)]
        assert len(hits) == n and {h.task_id for h in hits} == set(tasks)
        assert not [e for e in cached if isinstance(e, ev.TaskDispatched | ev.TaskStarted | ev.TaskCompleted)]

        text = (source / CHANGED).read_text()
        (source / CHANGED).write_text(text + "\nint niyantra_changed_this_file(void) { return 22; }\n")
        readers = {t["id"] for t in doc["tasks"] if f"src/{CHANGED}" in t["inputs"]}
        assert readers  # the file is compiled by some task
        expected = dependents(tasks, readers)
        changed = await _build(url, build, "zlib-3", n)
        assert _names(changed, ev.TaskStarted) == expected
        assert _names(changed, ev.TaskCacheHit) == set(tasks) - expected
        assert _names(changed, ev.TaskCompleted) == expected
    for w in workdirs.values():  # nothing the build left on the machines is used below
        shutil.rmtree(w)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for graph, task, path in (("zlib-1", "example", "build/example"), ("zlib-2", "libz.so.1", "build/libz.so.1")):
        got = await asyncio.to_thread(  # zlib-2's task was a cache hit: its reused output is fetched
            niyantra, "artifacts", "get", path, "--graph", graph, "--task", task, "-o", str(fetched), url=url
        )
        assert got.returncode == 0, got.stderr
    env = {**os.environ, "LD_LIBRARY_PATH": str(fetched)}
    run = subprocess.run([str(fetched / "example")], capture_output=True, text=True, timeout=60, env=env, cwd=fetched)
    assert run.returncode == 0 and "zlib version" in run.stdout, run.stdout + run.stderr

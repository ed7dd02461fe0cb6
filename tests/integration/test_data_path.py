"""The data path end to end (issue 22, items 1 and 2): a graph's source stored at submit, every
task's workspace laid out from the artifact store (the source tree and its dependencies'
outputs), its declared outputs stored and recorded on its completion; on a real nats-server,
with three agents whose workdirs share nothing (as on three machines)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats

from node_agent.agent import run_agent
from node_agent.artifacts.store import ArtifactStore
from node_agent.execution import ExecutionSettings
from node_agent.settings import AgentSettings
from orchestrator.cli.replay import read_messages
from orchestrator.decision.decide import DeciderConfig
from orchestrator.graphs.graphfile import load_graph
from orchestrator.processes.decider import run_decider
from orchestrator.replay.check import check
from orchestrator.runtime.natsserver import RunningServer
from orchestrator.writeside.eventlog import EventLog
from projections.runner import run_projector
from schemas import events as ev
from schemas import records as rec
from schemas.codec import encode_manifest
from tests.conftest import assert_eventually
from tests.integration.agent_support import NIYANTRA, REPO, task_events
from tests.integration.harness import submit, task_status

NODES = ("node-1", "node-2", "node-3")


@asynccontextmanager
async def machines(url: str, tmp: Path, nodes: tuple[str, ...] = NODES) -> AsyncIterator[dict[str, Path]]:
    """Projectors, a decider and one in-process agent per node, each with a workdir of its own."""
    stop = asyncio.Event()
    ready: list[asyncio.Event] = []

    def marker() -> object:
        e = asyncio.Event()
        ready.append(e)
        return e.set

    tasks = [asyncio.create_task(run_projector(n, url, stop, marker())) for n in ("readiness", "node-scores")]
    config = dataclasses.replace(DeciderConfig(), decider_id="decider-1")
    tasks.append(asyncio.create_task(run_decider(url, stop, config, tick=0.3, on_ready=marker())))
    workdirs = {n: tmp / f"machine-{n}" for n in nodes}
    for node, workdir in workdirs.items():
        settings = AgentSettings(
            node_id=node, url=url, slots=1, observe_interval_s=1.0, execution=ExecutionSettings(workdir=workdir)
        )
        tasks.append(asyncio.create_task(run_agent(settings, stop, marker())))
    try:
        await assert_eventually(lambda: len(ready) == len(tasks) and all(e.is_set() for e in ready), timeout=30)
        yield workdirs
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]


def write_graph(tmp: Path, graph_id: str, tasks: str) -> Path:
    """A graph file whose source folder holds ``words.txt`` (at ``src/``)."""
    (tmp / "repo").mkdir(exist_ok=True)
    (tmp / "repo" / "words.txt").write_text("alpha\nbeta\n")
    f = tmp / f"{graph_id}.toml"
    f.write_text(f'[graph]\nid = "{graph_id}"\nsource = {{ dir = "repo", at = "src" }}\n' + tasks)
    return f


# a: reads the source, writes out/a.txt; b: reads a's output, writes b.txt; c: reads both.
CHAIN = """
[[tasks]]
id = "a"
command = "mkdir -p out && tr a-z A-Z < src/words.txt > out/a.txt"
inputs = ["src/words.txt"]
outputs = ["out/a.txt"]

[[tasks]]
id = "b"
command = "test ! -e src/../c.txt && (cat out/a.txt; echo from-b) > b.txt && chmod +x b.txt"
depends_on = ["a"]
inputs = ["out/a.txt"]
outputs = ["b.txt"]

[[tasks]]
id = "c"
command = "test -x b.txt && cat out/a.txt b.txt src/words.txt > final.txt"
depends_on = ["a", "b"]
inputs = ["out/a.txt", "b.txt"]
outputs = ["final.txt"]
"""


async def _done(url: str, graph: str, tasks: tuple[str, ...]) -> dict[str, dict]:
    rows = {t: await task_status(url, graph, t) for t in tasks}
    return rows if all(r.get("state") in rec.TERMINAL_STATES for r in rows.values()) else {}


async def _completion(log: EventLog, graph: str, task: str) -> ev.TaskCompleted:
    done = [e for e in await task_events(log, graph, task) if isinstance(e, ev.TaskCompleted)]
    return done[-1]


async def _blob(store: ArtifactStore, digest: str, dest: Path) -> bytes:
    await store.fetch(digest, dest)
    return dest.read_bytes()


async def test_three_tasks_on_three_machines_pass_files_through_the_store(
    nats_server: RunningServer, tmp_path: Path
) -> None:
    url = nats_server.url
    spec = load_graph(write_graph(tmp_path, "chain", CHAIN), hash_source=True)
    async with machines(url, tmp_path) as workdirs:
        await submit(url, spec)
        rows = await assert_eventually(lambda: _done(url, "chain", ("a", "b", "c")), timeout=60)
    assert {t: r["state"] for t, r in rows.items()} == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    nc = await nats.connect(url)
    try:
        log, store = EventLog(nc), ArtifactStore(nc)
        a, b, c = [await _completion(log, "chain", t) for t in ("a", "b", "c")]
        # The source manifest is a blob named by the tree's digest, stored before the submission.
        assert await _blob(store, spec.source_tree, tmp_path / "m") == encode_manifest(
            rec.SourceManifest(files=spec.source_files)
        )
        assert [(o.path, o.size, o.mode) for o in a.outputs] == [("out/a.txt", 11, 0o644)]
        assert [(o.path, o.mode) for o in b.outputs] == [("b.txt", 0o755)]
        assert [o.path for o in c.outputs] == ["final.txt"]
        final = await _blob(store, c.outputs[0].digest, tmp_path / "final")
        # b's dispatch carried a's recorded output; c's carried both dependencies' outputs.
        dispatches = {
            t: [e for e in await task_events(log, "chain", t) if isinstance(e, ev.TaskDispatched)][-1]
            for t in ("b", "c")
        }
    finally:
        await nc.close()
    assert final == b"ALPHA\nBETA\nALPHA\nBETA\nfrom-b\nalpha\nbeta\n"
    # a ran first on its machine: its agent fetched the whole source tree and said so (the
    # node's transfer rate is learned from it)
    source_bytes = sum({f.digest: f.size for f in spec.source_files}.values())
    assert (a.fetched_bytes, a.fetch_seconds > 0) == (source_bytes, True)
    replayed = check(await read_messages(url))  # the dispatches' data fields are re-derived exactly
    assert replayed["decisions"] == 3 and replayed["mismatches"] == []
    assert dispatches["b"].dep_outputs == a.outputs and dispatches["b"].source_tree == spec.source_tree
    assert dispatches["c"].dep_outputs == tuple(sorted(a.outputs + b.outputs, key=lambda r: r.path))
    # Nothing is shared: each machine's workdir holds only what its own tasks needed.
    ran_on = {t: r["node"] for t, r in rows.items()}
    for task, node in ran_on.items():
        assert (workdirs[node] / node / "chain" / task / "src" / "words.txt").read_text() == "alpha\nbeta\n"
    for node, workdir in workdirs.items():
        mine = {t for t, n in ran_on.items() if n == node}
        assert {p.name for p in (workdir / node / "chain").iterdir()} == mine if mine else True


FAULTS = """
[[tasks]]
id = "silent"
command = "mkdir -p out && echo one > out/one.txt"
outputs = ["out/one.txt", "out/two words.txt"]

[[tasks]]
id = "escape"
command = "ln -s /etc/hostname link.txt"
outputs = ["link.txt"]
"""


async def test_a_missing_output_or_a_symlink_out_fails_the_task_naming_the_path(
    nats_server: RunningServer, tmp_path: Path
) -> None:
    url = nats_server.url
    spec = load_graph(write_graph(tmp_path, "faults", FAULTS), hash_source=True)
    async with machines(url, tmp_path, NODES[:2]):
        await submit(url, spec)
        rows = await assert_eventually(lambda: _done(url, "faults", ("silent", "escape")), timeout=60)
    assert {t: r["state"] for t, r in rows.items()} == {"silent": "failed", "escape": "failed"}
    nc = await nats.connect(url)
    try:
        log = EventLog(nc)
        silent, escape = [await _completion(log, "faults", t) for t in ("silent", "escape")]
    finally:
        await nc.close()
    assert silent.outcome == "failure" and silent.exit_code == 0 and not silent.outputs
    assert "declared output 'out/two words.txt' is missing" in silent.error and not silent.retryable
    assert "'link.txt' is refused" in escape.error and "outside the workspace" in escape.error
    assert not escape.outputs and not escape.retryable


CORRUPT = """
[[tasks]]
id = "make"
command = "mkdir -p out && echo good > out/a.txt"
outputs = ["out/a.txt"]

[[tasks]]
id = "use"
command = "touch ran && cat out/a.txt"
depends_on = ["make"]
tier = 3
"""


async def test_a_blob_corrupted_in_the_store_is_detected_on_fetch_and_never_used(
    nats_server: RunningServer, tmp_path: Path
) -> None:
    url = nats_server.url
    spec = load_graph(write_graph(tmp_path, "corrupt", CORRUPT), hash_source=True)
    async with machines(url, tmp_path, NODES[:2]) as workdirs:
        await submit(url, spec)
        await assert_eventually(lambda: _state(url, "corrupt", "make", "succeeded"), timeout=60)
        nc = await nats.connect(url)
        try:
            store = ArtifactStore(nc)
            made = await _completion(EventLog(nc), "corrupt", "make")
            digest = made.outputs[0].digest
            obs = await nc.jetstream().object_store(store.settings.bucket)
            await obs.put(digest, b"evil\n")  # other bytes under the good content's name
            for node, workdir in workdirs.items():  # no node holds it locally: the next use fetches it
                shutil.rmtree(workdir / ".niyantra" / f"{node}.cas", ignore_errors=True)
            approved = subprocess.run(
                [*NIYANTRA, "approve", "use", "--graph", "corrupt", "--by", "tester", "--nats-url", url],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert approved.returncode == 0, approved.stderr
            rows = await assert_eventually(lambda: _done(url, "corrupt", ("make", "use")), timeout=60)
            used = await _completion(EventLog(nc), "corrupt", "use")
            after = await store.stat(digest)
        finally:
            await nc.close()
    assert rows["use"]["state"] == "failed" and used.exit_code is None
    assert f"input 'out/a.txt' (sha256:{digest}) cannot be laid out" in used.error and "corrupt" in used.error
    node = rows["use"]["node"]
    workspace = workdirs[node] / node / "corrupt" / "use"
    assert not (workspace / "ran").exists() and not (workspace / "out" / "a.txt").exists()
    assert after is None or not after.intact  # the bad copy is withdrawn (or at least never intact)


async def _state(url: str, graph: str, task: str, state: str) -> bool:
    return (await task_status(url, graph, task)).get("state") == state

"""`niyantra build` end to end on a real nats-server: examples/zlib imported, submitted as run
zlib-1 and watched to its end, its commands run by a real agent whose workspace holds the source
at src/ and the build folder at build/ (not the folders CMake configured), then zlib's example runs;
a second `niyantra build` is a new run, zlib-2."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from orchestrator.graphs.ninja.load import import_ninja
from orchestrator.runtime.natsserver import RunningServer
from tests.integration.agent_support import agent_running, niyantra
from tests.integration.harness import system
from tests.integration.ninja_support import ZLIB, configure, ninja_commands


async def test_build_runs_zlib_on_an_agent_with_folders_mapped(nats_server: RunningServer, tmp_path: Path) -> None:
    build = tmp_path / "configured build"
    configure(ZLIB, build)
    n, n_static = (
        len(ninja_commands(build)),
        len(import_ninja(build / "build.ninja", targets=("libz.a",)).document["tasks"]),
    )
    workdir = tmp_path / "agent"  # the agent's only copy: CMake's folders are not where commands look
    shutil.copytree(ZLIB, workdir / "src")
    shutil.copytree(build, workdir / "build")
    url = nats_server.url
    async with system(url, tmp_path / "unused", agents=0), agent_running(url, workdir, workspace="shared", slots=2):
        first = await asyncio.to_thread(niyantra, "build", str(build), "--timeout", "300", url=url)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"submitted graph zlib-1: {n} tasks" in first.stdout
        assert f"zlib-1: Total tasks: {n} | Completed: {n}" in first.stdout
        again = await asyncio.to_thread(niyantra, "build", str(build), "--target", "libz.a", "--no-wait", url=url)
        assert again.returncode == 0 and f"submitted graph zlib-2: {n_static} tasks" in again.stdout, again.stderr
        graph_file = tmp_path / "zlib.toml"  # the imported file, submitted twice, is accepted once
        wrote = await asyncio.to_thread(
            niyantra, "import", "ninja", str(build / "build.ninja"), "-o", str(graph_file), url=url
        )
        assert wrote.returncode == 0, wrote.stderr
        once = await asyncio.to_thread(niyantra, "submit", str(graph_file), url=url)
        twice = await asyncio.to_thread(niyantra, "submit", str(graph_file), url=url)
        assert f"submitted graph zlib: {n} tasks" in once.stdout, once.stdout + once.stderr
        assert "already submitted with the same content" in twice.stdout, twice.stdout + twice.stderr
    done = subprocess.run([str(workdir / "build" / "example")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "zlib version" in done.stdout, done.stdout + done.stderr
    assert not (build / "example").exists()  # built in the agent's workspace, not in CMake's folder

"""scripts/demo_build as a user runs it: an instance, three agents with separate workdirs, zlib
built, its example fetched from the store and run, the second build all cache hits; exit 0."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.agent_support import REPO


@pytest.mark.timeout(900)  # a real build and a whole instance: ~1 min alone, more on a loaded machine
def test_demo_build_builds_zlib_runs_example_and_reuses_every_task() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIYANTRA_")}
    done = subprocess.run(
        [str(REPO / "scripts" / "demo_build")], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "submitted graph zlib-1: 41 tasks" in out and "submitted graph zlib-2: 41 tasks" in out
    assert "zlib version" in out and "example exited 0" in out
    assert "zlib-2: 41 cache hits, no command ran" in out

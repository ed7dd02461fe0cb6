"""`niyantra` registers every command without loading what only some commands use (issue 22): the
command modules import DuckDB, the archive, the simulator, the write-side application and nats
inside the commands. Checked in a fresh interpreter, by the modules it holds (no timing)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["duckdb", "eventsourcing", "nats", "orchestrator.replay", "projections.archive", "orchestrator.decision"]


@pytest.mark.parametrize("module", HEAVY)
def test_importing_the_command_line_does_not_import(module):
    probe = (
        "import sys, orchestrator.cli.main; "
        f"print(sorted(m for m in sys.modules if m == {module!r} or m.startswith({module!r} + '.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout

"""`niyantra` registers every command without loading what only some commands use (issue 22): the
command modules import DuckDB, the archive, the simulator, the write-side application and nats
inside the commands, and `main` loads only the module of the command it runs (`COMMANDS`).
Checked in a fresh interpreter, by the modules it holds (no timing)."""

from __future__ import annotations

import json
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


def _registered(app) -> set[str]:
    commands = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    return commands | {g.name for g in app.registered_groups}


def test_the_command_table_names_every_registered_command():
    from orchestrator.cli.main import COMMANDS, load

    assert _registered(load()) == {n for _, names in COMMANDS for n in names}


def _loaded_alone(command: str) -> tuple[set[str], set[str]]:
    probe = (
        "import json, sys, orchestrator.cli.main as m; app = m.load(sys.argv[1]); "
        "cs = [c.name or c.callback.__name__.replace('_', '-') for c in app.registered_commands]; "
        "print(json.dumps([cs + [g.name for g in app.registered_groups], "
        "sorted(k for k in sys.modules if k.startswith('orchestrator.cli.'))]))"
    )
    done = subprocess.run([sys.executable, "-c", probe, command], capture_output=True, text=True, check=True)
    names, modules = json.loads(done.stdout)
    return set(names), set(modules)


@pytest.mark.parametrize(("module", "names"), [("build", ("build", "import")), ("wait", ("wait",)), ("why", ("why",))])
def test_a_command_loads_its_own_module_not_every_one(module, names):
    registered, modules = _loaded_alone(names[0])
    assert set(names) <= registered
    assert f"orchestrator.cli.{module}" in modules
    assert "orchestrator.cli.instance" not in modules and "orchestrator.cli.ops" not in modules

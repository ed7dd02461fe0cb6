"""What `niyantra up --autoscale` was given (`AutoscaleSettings`, kept in ``<data-dir>/run``), the
hook command it gives the decider, and the decider config that names it (`decider_toml`).
The follower itself is `orchestrator.runtime.autoscale`."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ServerError
from orchestrator.graphs.graphwrite import toml_table

SETTINGS = "autoscale.json"  # in <data-dir>/run: what `up --autoscale` was given
DECIDER_TOML = "decider.toml"  # in <data-dir>/run: the decider's config, with the hook


@dataclass(frozen=True)
class AutoscaleSettings:
    """The bounds `up --autoscale` was given, and what it starts agents with."""

    max_agents: int = 6
    min_agents: int = 1
    slots: int = 2
    url: str = ""
    drain_timeout_s: float = 50.0  # under the hook's own limit (60 s)

    def __post_init__(self) -> None:
        if not 1 <= self.min_agents <= self.max_agents:
            raise ValueError(f"autoscale: need 1 <= min_agents ({self.min_agents}) <= max_agents ({self.max_agents})")


def hook_command(data_dir: Path) -> str:
    """The ``[decider.scaling] command`` of an instance started with ``--autoscale``."""
    cli = [sys.executable, "-m", "orchestrator.cli.main", "autoscale", "--data-dir", str(data_dir.resolve())]
    return " ".join(shlex.quote(a) for a in cli)


def decider_toml(table: Mapping[str, Any], command: str) -> str:
    """A decider config: ``table`` (a parsed ``[decider]`` table, e.g. the user's) with scaling on
    and ``command`` as its hook."""
    scaling = {**table.get("scaling", {}), "enabled": True, "command": command}
    return toml_table("decider", {**table, "scaling": scaling})


def read_settings(data_dir: Path) -> AutoscaleSettings:
    path = data_dir / "run" / SETTINGS
    try:
        return AutoscaleSettings(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise ServerError(f"{path}: not an instance started with --autoscale ({e})") from e


def write_settings(data_dir: Path, s: AutoscaleSettings) -> None:
    path = data_dir / "run" / SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(s), indent=2))

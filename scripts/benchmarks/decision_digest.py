"""The decision digest: what the real `decide` decides on the example workloads, as one SHA-256.

Each workload (examples/demo.toml, the nf-core mini graph, the 200-task WfCommons instances) runs
on the simulator (the real folds and `decide`, no NATS) on nodes of speeds 4,2,1,1. Every decision
event is hashed as its fields that differ from their defaults (``msgspec.to_builtins`` with
defaults dropped), so a field added to an event with a default leaves the digest as it was, and
only a decision that changes (another node, a timeout set, a new kind of decision) moves it.
Prints JSON: one digest per workload and one over all. ``--config FILE``: the decider's config
(a ``[decider]`` table, as ``niyantra decider --config``); ``--ignore FIELD,...``: leave fields out.

    python scripts/benchmarks/decision_digest.py [--config FILE] [--ignore timeout_s,timeout_rule]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator.decision.config import decider_config  # noqa: E402
from orchestrator.decision.decide import DeciderConfig  # noqa: E402
from orchestrator.graphs.graphfile import Limits, WfOptions, load_graph  # noqa: E402
from orchestrator.replay.simulator import simulate  # noqa: E402

SPEEDS = [4.0, 2.0, 1.0, 1.0]


def workloads() -> list[Path]:
    """The example graphs the digest covers."""
    wf = sorted((ROOT / "examples/workloads/wfcommons").glob("*-n200-s1.json.gz"))
    return [ROOT / "examples/demo.toml", ROOT / "examples/workloads/nfcore-rnaseq-mini.json", *wf]


def content(event: msgspec.Struct, ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The event's fields that differ from their defaults (without those in ``ignore``)."""
    defaults = {f.name: f.default for f in msgspec.structs.fields(event) if f.default is not msgspec.NODEFAULT}
    out = msgspec.to_builtins(event)
    return {
        k: v for k, v in out.items() if k not in ignore and (k not in defaults or msgspec.to_builtins(defaults[k]) != v)
    }


def digest(path: Path, config: DeciderConfig, ignore: frozenset[str]) -> tuple[str, int]:
    """The digest of one workload's decisions, and how many there were."""
    spec = load_graph(path, Limits(), WfOptions())
    decisions: list[Any] = []
    simulate(spec, SPEEDS, config, record=decisions)
    h = hashlib.sha256()
    for e in decisions:
        h.update(json.dumps(content(e, ignore), sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()[:16], len(decisions)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="TOML file with a [decider] table")
    ap.add_argument("--ignore", default="", help="fields to leave out, comma-separated")
    args = ap.parse_args()
    table = tomllib.loads(Path(args.config).read_text()).get("decider", {}) if args.config else {}
    config, ignore = decider_config(table), frozenset(f for f in args.ignore.split(",") if f)
    total = hashlib.sha256()
    report: dict[str, Any] = {}
    for path in workloads():
        d, n = digest(path, config, ignore)
        report[path.name] = {"digest": d, "decisions": n}
        total.update(d.encode())
    report["all"] = total.hexdigest()[:16]
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Makespan with data transfer: the decider in the simulator against HEFT with communication
costs (see scripts/bench_locality).

For every WfCommons instance (examples/workloads/wfcommons, plus any instance of another name in
``--also``, by default ../shared/workloads/wfcommons, when that folder exists) and every
platform (the three of reference.csv), the workflow runs in `niyantra simulate`'s simulator
with ``--bandwidth`` (default 10MB/s): a task on a node that does not hold a dependency's output pays
size / bandwidth (the decider learns the rate from the fetches, it is never told). The
reference is HEFT with communication costs (heft_comm.py, Topcuoglu, Hariri, Wu 2002) knowing
every runtime, speed and size: an edge costs the parent's output bytes / bandwidth between two
processors (every child of these instances reads all of its parents' outputs). HEFT with zero
communication is checked against reference.csv's HEFT on the way (``heft0_over_reference``).
The ablation ``blind`` is the same decider blind to transfers (its transfer term ~0), the
files still costing their time: what locality in node choice buys. ``edge_links`` runs the
simulator under HEFT's own communication model (every dependency's data over its own link, all
at once; the default gives a node one link, so its fetches add up): how much of the gap is the
model rather than the choices.
Prints JSON: per row both makespans and their ratio, the geometric mean of the ratios (all
rows and per platform), the bandwidth.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator.decision.decide import DeciderConfig  # noqa: E402
from orchestrator.decision.scoring import ScoringConfig  # noqa: E402
from orchestrator.decision.transfer import parse_bandwidth  # noqa: E402
from orchestrator.graphs.graphfile import load_graph, load_output_sizes  # noqa: E402
from orchestrator.graphs.validation import GraphSpec  # noqa: E402
from orchestrator.replay.simulator import Network, output_records, simulate  # noqa: E402

_spec = importlib.util.spec_from_file_location("heft_comm", Path(__file__).with_name("heft_comm.py"))
heft_comm = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["heft_comm"] = heft_comm
_spec.loader.exec_module(heft_comm)  # type: ignore[union-attr]

WORKLOADS = ROOT / "examples" / "workloads" / "wfcommons"
SHARED = ROOT.parent / "shared" / "workloads" / "wfcommons"
PLATFORMS = {
    "5 mixed": [2, 1, 1, 0.5, 0.5],
    "16 mixed": [4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5],
    "32 x 1": [1] * 32,
}


# The ablation: the same decider blind to transfers (a prior rate so high and so heavy that no
# fetch moves it: the transfer term is ~0), the files still cost their time.
BLIND = DeciderConfig(scoring=ScoringConfig(transfer_prior_bps=1e30, transfer_prior_s=1e30))


def geomean(xs: list[float]) -> float | None:
    return round(math.exp(sum(map(math.log, xs)) / len(xs)), 4) if xs else None


def heft_makespan(spec: GraphSpec, speeds: list[float], out_bytes: dict[str, int], bps: float | None) -> float:
    """HEFT with communication costs (none when ``bps`` is None) on nodes of ``speeds``."""
    tasks = [t.id for t in spec.tasks]
    preds = {t.id: list(t.depends_on) for t in spec.tasks}
    comp = {t.id: [(t.estimate_s or 0.0) / s for s in speeds] for t in spec.tasks}
    comm = {(u, t.id): out_bytes.get(u, 0) / bps for t in spec.tasks for u in t.depends_on} if bps else {}
    return float(heft_comm.heft(tasks, preds, comp, comm).makespan)


def instances(also: Path | None) -> list[tuple[Path, str]]:
    """(file, where) of every instance: the repo's, then those of ``also`` with another name."""
    own = sorted(WORKLOADS.glob("*.json.gz"))
    names = {p.name for p in own}
    extra = sorted(p for p in also.glob("*.json.gz") if p.name not in names) if also and also.is_dir() else []
    return [(p, "examples/workloads") for p in own] + [(p, str(also)) for p in extra]


def reference_heft() -> dict[tuple[str, int], float]:
    """reference.csv's zero-communication HEFT makespan by (instance, node count)."""
    rows = csv.DictReader((WORKLOADS / "reference.csv").open())
    return {(r["instance"], len(r["speeds"].split(","))): float(r["heft_makespan_s"]) for r in rows}


def row(path: Path, where: str, platform: str, bps: float, ref: dict[tuple[str, int], float]) -> dict[str, Any]:
    spec = load_graph(path)
    sizes = load_output_sizes(path)
    out_bytes = {t: sum(n for _, n in files) for t, files in sizes.items()}
    speeds = [float(s) for s in PLATFORMS[platform]]
    t = time.perf_counter()
    sim = simulate(spec, speeds, network=Network(bps, output_records(sizes)))
    sim_s = time.perf_counter() - t
    blind = simulate(spec, speeds, BLIND, network=Network(bps, output_records(sizes)))
    edge = simulate(spec, speeds, network=Network(bps, output_records(sizes), links="edge"))
    heft = heft_makespan(spec, speeds, out_bytes, bps)
    heft0 = heft_makespan(spec, speeds, out_bytes, None)
    reference = ref.get((path.name, len(speeds)))
    return {
        "instance": path.name,
        "from": where,
        "platform": platform,
        "tasks": len(spec.tasks),
        "niyantra_s": sim.makespan_s,
        "heft_s": round(heft, 3),
        "over_heft": round(sim.makespan_s / heft, 4),
        "niyantra_transferred_bytes": sim.transferred_bytes,
        "niyantra_transfer_s": sim.transfer_s,
        "blind_s": blind.makespan_s,
        "blind_over_heft": round(blind.makespan_s / heft, 4),
        "edge_links_s": edge.makespan_s,
        "edge_links_over_heft": round(edge.makespan_s / heft, 4),
        "heft0_s": round(heft0, 3),
        "heft0_over_reference": round(heft0 / reference, 4) if reference else None,
        "sim_s": round(sim_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bandwidth", default="10MB/s", help="link speed between nodes, e.g. 10MB/s, 1Gbit/s")
    ap.add_argument("--only", default="", help="instances whose file name contains this")
    ap.add_argument("--platforms", default=",".join(PLATFORMS), help=f"some of: {', '.join(PLATFORMS)}")
    ap.add_argument("--also", type=Path, default=SHARED, help="another folder of instances (used when present)")
    args = ap.parse_args()
    bps = parse_bandwidth(args.bandwidth)
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    ref, rows, started = reference_heft(), [], time.perf_counter()
    files = [(p, w) for p, w in instances(args.also) if args.only in p.name]
    for path, where in files:
        for platform in platforms:
            rows.append(row(path, where, platform, bps, ref))
    by_platform = {p: geomean([r["over_heft"] for r in rows if r["platform"] == p]) for p in platforms}
    also = args.also if args.also and args.also.is_dir() else None
    doc = {
        "measure": "makespan with data transfer, niyantra (simulated, eft) / HEFT with communication costs",
        "bandwidth": args.bandwidth,
        "bandwidth_bps": bps,
        "geomean_over_heft": geomean([r["over_heft"] for r in rows]),
        "by_platform": by_platform,
        "blind_geomean_over_heft": geomean([r["blind_over_heft"] for r in rows]),
        "edge_links_geomean_over_heft": geomean([r["edge_links_over_heft"] for r in rows]),
        "heft0_over_reference_geomean": geomean([r["heft0_over_reference"] for r in rows if r["heft0_over_reference"]]),
        "workloads": {
            "examples/workloads/wfcommons": sum(1 for _, w in files if w == "examples/workloads"),
            "also": str(also) if also else None,
            "also_new_instances": sum(1 for _, w in files if w != "examples/workloads"),
        },
        "rows_count": len(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()

"""Makespan against HEFT on the WfCommons workloads in examples/workloads (see scripts/bench_makespan).

For every (instance, platform) row of reference.csv, the workflow runs in the simulator with
each policy; speeds are never told to the decider. Reported per policy and platform: the
geometric mean of makespan / HEFT (goal ≤ 1.00 for eft), and every row.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator.decision.decide import DeciderConfig  # noqa: E402
from orchestrator.decision.scoring import ScoringConfig  # noqa: E402
from orchestrator.graphs.graphfile import load_graph  # noqa: E402
from orchestrator.replay.simulator import simulate  # noqa: E402

WORKLOADS = ROOT / "examples" / "workloads" / "wfcommons"
PLATFORMS = {5: "2,1,1,0.5,0.5", 16: "4,2,2,1,1,1,1,1,1,1,1,0.5,0.5,0.5,0.5,0.5", 32: "32 x 1"}


def geomean(xs: list[float]) -> float:
    return round(math.exp(sum(map(math.log, xs)) / len(xs)), 4) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", default="eft,seed,fifo")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    policies = args.policies.split(",")
    rows = [r for r in csv.DictReader((WORKLOADS / "reference.csv").open()) if args.only in r["instance"]]
    ratios: dict[str, dict[str, list[float]]] = {p: {} for p in policies}
    out_rows = []
    started = time.perf_counter()
    specs = {}
    for row in rows:
        spec = specs.get(row["instance"]) or load_graph(WORKLOADS / row["instance"])
        specs[row["instance"]] = spec
        speeds = [float(x) for x in row["speeds"].split(",")]
        platform = PLATFORMS.get(len(speeds), row["speeds"])
        heft = float(row["heft_makespan_s"])
        entry = {"instance": row["instance"], "platform": platform, "tasks": len(spec.tasks), "heft_s": heft}
        for p in policies:
            t = time.perf_counter()
            r = simulate(spec, speeds, DeciderConfig(scoring=ScoringConfig(policy=p)))
            assert r.makespan_s >= r.lower_bound_s * (1 - 1e-9), (row, p, r)
            ratio = r.makespan_s / heft
            ratios[p].setdefault(platform, []).append(ratio)
            entry[p] = {
                "makespan_s": r.makespan_s,
                "over_heft": round(ratio, 4),
                "sim_s": round(time.perf_counter() - t, 2),
            }
        entry["reference_fifo_over_heft"] = round(float(row["fifo_makespan_s"]) / heft, 4)
        entry["reference_seed_over_heft"] = round(float(row["seed_formula_makespan_s"]) / heft, 4)
        out_rows.append(entry)
    summary = {
        p: {
            "geomean_over_heft": geomean([x for xs in ratios[p].values() for x in xs]),
            "by_platform": {k: geomean(v) for k, v in ratios[p].items()},
        }
        for p in policies
    }
    print(
        json.dumps(
            {
                "goal": "eft geomean makespan/HEFT <= 1.00 on every platform",
                "summary": summary,
                "instances": len(rows),
                "seconds": round(time.perf_counter() - started, 1),
                "rows": out_rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

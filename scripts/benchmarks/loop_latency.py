"""The decision loop's latency on a real system, split where the time goes (see scripts/bench_loop).

Reads the decider's round timings (``NIYANTRA_DECIDER_TIMINGS``, one JSON line per round that
dispatched; `orchestrator.processes.decider.Timings`) and the archive's metrics (``niyantra metrics
--json``), and prints one JSON document with each figure labelled by what it measures:

- ``view_change_to_append_ms``: the issue's measure. From the moment the view changed (the
  server stored the KV checkpoint of the newest view the decision used) to the dispatch's append
  acknowledgement (the decider's clock; same machine). Projector lag is not in it.
- ``first_change_to_append_ms``: from the first view checkpoint stored after the previous round
  began (a change the decider had to wait on: its own last append not yet in every view, or a
  round in progress) to the acknowledgement; the decider's own queueing included.
- ``view_change_to_decided_ms``: view change → the round's decisions made (per dispatch), the
  decider's own part, before the append;
- ``view_change_to_round_ms``: view change → the round began (the decider busy or waiting);
  ``decide_ms`` (round began → its pure work done, per round; ``decide_stages_ms``: its parts)
  and ``append_ms`` (pure work done → each ack); ``dispatches_per_round``.
- ``end_to_end_ms``: from the archive, a dispatch's stored time minus the stored time of the
  newest event its views reflected (``niyantra metrics``' decision_latency): projector lag
  (event stored → view written) + the above.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))], 3)


def summary(values: list[float]) -> dict[str, Any]:
    """Count, average, p50, p99 and max, in ms."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "avg": round(sum(values) / len(values), 3),
        "p50": _pct(values, 0.5),
        "p99": _pct(values, 0.99),
        "max": round(max(values), 3),
    }


def _share(values: list[float], limit: float) -> float | None:
    """The share of ``values`` at or under ``limit``."""
    return round(sum(v <= limit for v in values) / len(values), 4) if values else None


STAGES = ("build_views", "decide", "signals", "followup")


def loop_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The decider-side figures of its round timings (ms)."""
    view, first, dec, app, wake, sizes, made = [], [], [], [], [], [], []
    stages: list[list[float]] = [[], [], [], []]
    for r in rounds:
        dec.append((r["decided"] - r["woke"]) / 1e6)
        sizes.append(float(r["n"]))
        if r.get("view_at"):
            wake.append((r["woke"] - r["view_at"]) / 1e6)
            made.extend([(r["decided"] - r["view_at"]) / 1e6] * int(r["n"]))
        for i, ns in enumerate(r.get("stages") or []):
            stages[i].append(ns / 1e6)
        for a in r["acked"]:
            app.append((a - r["decided"]) / 1e6)
            if r.get("view_at"):
                view.append((a - r["view_at"]) / 1e6)
            if r.get("first_change_at"):
                first.append((a - r["first_change_at"]) / 1e6)
    return {
        "rounds": len(rounds),
        "view_change_to_append_ms": {**summary(view), "share_within_10ms": _share(view, 10.0)},
        "first_change_to_append_ms": summary(first),
        "view_change_to_decided_ms": {**summary(made), "share_within_10ms": _share(made, 10.0)},
        "view_change_to_round_ms": summary(wake),
        "decide_ms": summary(dec),
        "decide_stages_ms": {name: summary(v) for name, v in zip(STAGES, stages, strict=True) if v},
        "append_ms": summary(app),
        "dispatches_per_round": summary(sizes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("timings", type=Path, help="the decider's timings file (JSON lines)")
    ap.add_argument("metrics", type=Path, help="`niyantra metrics --json` output of the same run")
    ap.add_argument("--floor", type=Path, help="append_floor.py output of the same server after the run")
    ap.add_argument("--floor-loaded", type=Path, help="append_floor.py output of the same server during the run")
    ap.add_argument("--setup", default="{}", help="JSON object describing the run (graph, nodes), copied out")
    args = ap.parse_args()
    text = args.timings.read_text() if args.timings.exists() else ""  # a decider without timings wrote none
    rounds = [json.loads(line) for line in text.splitlines() if line.strip()]
    m = json.loads(args.metrics.read_text())
    out = {
        "setup": json.loads(args.setup),
        "goal": "view change to dispatch appended: p99 <= 10 ms (issue 5)",
        **loop_figures(rounds),
        "end_to_end_ms": {
            "what": "newest reflected event stored -> dispatch stored (projector lag included), from the archive",
            "n": m.get("decisions"),
            "avg": m.get("decision_latency_ms_avg"),
            "p99": m.get("decision_latency_ms_p99"),
        },
    }
    if args.floor is not None:
        out["append_floor"] = {
            "what": "a bare append's ack on the same server, idle after the run (scratch stream)",
            **json.loads(args.floor.read_text()),
        }
    if args.floor_loaded is not None:
        out["append_floor_loaded"] = {
            "what": "a bare append's ack on the same server while the graph ran (scratch stream)",
            **json.loads(args.floor_loaded.read_text()),
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()

"""Validate and submit a generated graph; print JSON figures (see scripts/bench_graph).

The graph is layered (width 100; each task depends on two tasks of the layer before), written
as a TOML file like a user's. Measured separately: reading + TOML parsing, validation
(tasks/s), and submit (events built, one atomic write to a real nats-server with
``sync_interval: always``), plus the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator.graphs.graphfile import parse_document, read_limited  # noqa: E402
from orchestrator.graphs.submission import graph_events  # noqa: E402
from orchestrator.graphs.validation import build_graph  # noqa: E402
from orchestrator.runtime.natsserver import default_config, server_args, start_server  # noqa: E402


def write_graph(path: Path, n: int, width: int = 100) -> None:
    lines = ['[graph]\nid = "scale"\ntitle = "generated"\n']
    for i in range(n):
        layer, k = divmod(i, width)
        deps = "" if layer == 0 else f'"L{layer - 1}-{k}", "L{layer - 1}-{(k + 1) % width}"'
        lines.append(
            f'[[tasks]]\nid = "L{layer}-{k}"\ncommand = "make -C part{k} step{layer}"\n'
            f'depends_on = [{deps}]\ntype = "step"\nestimate = "30s"\n'
        )
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.toml"
        write_graph(path, args.tasks)
        file_bytes = path.stat().st_size
        t0 = time.perf_counter()
        doc = parse_document(str(path), read_limited(path, 1 << 30))
        t1 = time.perf_counter()
        spec = build_graph(str(path), doc)
        t2 = time.perf_counter()
        events = graph_events(spec, datetime.now(UTC), "submit:scale")
        server = start_server(
            server_args(config=default_config(), port=-1, http_port=None, store_dir=Path(tmp) / "js"),
            Path(tmp) / "nats.log",
            store_dir=Path(tmp) / "js",
        )
        try:
            from orchestrator.writeside.application import Orchestrator

            t3 = time.perf_counter()
            app = Orchestrator(env={"NIYANTRA_NATS_URL": server.url})
            submitted = app.submit_graph(events)
            app.close()
            t4 = time.perf_counter()
        finally:
            server.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {
        "tasks": len(spec.tasks),
        "file_bytes": file_bytes,
        "parse_s": round(t1 - t0, 3),
        "validate_s": round(t2 - t1, 3),
        "validate_tasks_per_s": round(len(spec.tasks) / (t2 - t1)),
        "submit_s": round(t4 - t3 + (t3 - t2), 3),
        "submit_messages": len(events),
        "submitted_seq": submitted.seq,
        "peak_rss_mib": round(rss / 2**20, 1),
        "goals": {"validate_tasks_per_s": 200_000, "submit_s": 30, "peak_rss_mib": 1024},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

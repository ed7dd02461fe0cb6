"""How long a run stands still when a 3-server cluster loses its EVENTS stream's leader (see
scripts/bench_failover).

`niyantra up --cluster 3` with two agents of two slots runs chains of short tasks (``sleep``).
Once ``--kill-after`` tasks have succeeded, the server leading EVENTS is SIGKILLed (the hardest
one to lose: the log's leader, and every ordered consumer living on it). The run then goes on with
two servers to the end. From the log afterwards:

- ``to_first_dispatch_s``: from the kill to the first dispatch decided after it (no new work
  starts before: the stream elects a leader, projectors follow again, the decider sees a change);
- ``largest_dispatch_gap_s``: the longest time between two dispatches in the whole run;
- ``run_s``: from the first dispatch to the last completion.

Each repeat is a fresh instance; medians and maxima over repeats are printed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nats  # noqa: E402

from orchestrator.cli.ops import _all_events  # noqa: E402
from orchestrator.runtime.ports import free_port  # noqa: E402
from orchestrator.runtime.supervisor import UpSettings, down, up  # noqa: E402
from orchestrator.writeside.api import Graph  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas import subjects as S  # noqa: E402


def chains(graph_id: str, tasks: int, width: int, seconds: float) -> Graph:
    """``width`` chains of ``tasks // width`` tasks, each task ``sleep seconds``."""
    g = Graph(graph_id)
    for i in range(tasks):
        g.task(f"t{i:04d}", f"sleep {seconds}", depends_on=[f"t{i - width:04d}"] if i >= width else [])
    return g


async def _leader(url: str) -> str:
    nc = await nats.connect(servers=url.split(","))
    try:
        return (await nc.jetstream().stream_info(S.STREAM)).cluster.leader
    finally:
        await nc.close()


async def _succeeded(url: str) -> int:
    """Completions on the log (an error while the cluster elects counts as none yet)."""
    try:
        events, _ = await asyncio.wait_for(_all_events(url), 10)
    except (OSError, TimeoutError, nats.errors.Error):
        return -1
    return sum(1 for _, e in events if isinstance(e, ev.TaskCompleted) and e.outcome == "success")


def _wait(url: str, n: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while asyncio.run(_succeeded(url)) < n:
        if time.monotonic() > end:
            raise SystemExit(f"bench_failover: fewer than {n} tasks succeeded within {deadline_s:.0f}s")
        time.sleep(0.5)


def one_run(tasks: int, kill_after: int, seconds: float, logs: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="niyantra-failover-") as tmp:
        data = Path(tmp) / "inst"
        started = datetime.now(UTC)
        try:
            m = up(UpSettings(data_dir=data, port=free_port(), agents=2, slots=2, cluster=3))
            servers = {p.name: p for p in m.processes if p.name.startswith("nats-server")}
            victim = f"nats-server-{asyncio.run(_leader(m.url)).rsplit('-', 1)[1]}"
            chains("failover", tasks, 4, seconds).submit(m.url)
            _wait(m.url, kill_after, 120)
            killed_at = datetime.now(UTC)
            os.kill(servers[victim].pid, signal.SIGKILL)
            psutil.Process(servers[victim].pid).wait(10)
            _wait(m.url, tasks, 300)
            events, _ = asyncio.run(_all_events(m.url))
        finally:
            down(data)
            if logs is not None:
                shutil.copytree(data / "logs", logs / f"run-{started:%H%M%S}", dirs_exist_ok=True)
    dispatched = [e.occurred_at for _, e in events if isinstance(e, ev.TaskDispatched)]
    completed = [e.occurred_at for _, e in events if isinstance(e, ev.TaskCompleted)]
    after = [t for t in dispatched if t > killed_at]
    gaps = [(b - a).total_seconds() for a, b in zip(dispatched, dispatched[1:], strict=False)]
    return {
        "to_first_dispatch_s": (min(after) - killed_at).total_seconds(),
        "largest_dispatch_gap_s": max(gaps),
        "run_s": (max(completed) - min(dispatched)).total_seconds(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=120)
    ap.add_argument("--kill-after", type=int, default=20, help="succeeded tasks before the kill")
    ap.add_argument("--task-s", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--logs", type=Path, help="keep each run's process logs under this directory")
    args = ap.parse_args()
    runs = [one_run(args.tasks, args.kill_after, args.task_s, args.logs) for _ in range(args.repeats)]
    summary = {
        k: {"median": round(statistics.median(r[k] for r in runs), 2), "max": round(max(r[k] for r in runs), 2)}
        for k in runs[0]
    }
    print(json.dumps({"benchmark": "failover", **vars(args), "runs": runs, "summary": summary}, indent=2, default=str))


if __name__ == "__main__":
    main()

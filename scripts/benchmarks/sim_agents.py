"""Simulated nodes for benchmarks: N real node agents in one process, each with its own NATS
connection, that run no command: a dispatch "runs" for ``--run-s`` seconds (default 0: no
time at all, the system saturated), spread by ``--jitter`` per task, and succeeds.

Everything else is the real agent (`node_agent.agent.Agent`): registration, observations, the
node's durable pull consumer, the guarded TaskStarted and TaskCompleted appends and the ack.
Only `Execution.run` is replaced, so a 100-node system fits on one small machine; use it where
the figure measured is the orchestrator's (decision latency), not the cost of starting processes.
With ``--run-s`` above 0 the offered load is bounded (nodes x slots / run-s tasks a second), as
in a real build whose tasks take time; with 0 every slot asks for work the moment it is given
some, and the figures measure the system at saturation (queueing included).

    python scripts/benchmarks/sim_agents.py --url nats://127.0.0.1:4222 --nodes 100 [--slots 1] [--run-s 0]

Runs until SIGTERM/SIGINT; prints "ready" on stdout once every agent registered.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node_agent.agent import Agent  # noqa: E402
from node_agent.report import RunReport  # noqa: E402
from node_agent.runner import RunResult  # noqa: E402
from node_agent.settings import AgentSettings  # noqa: E402
from orchestrator.runtime.connection import connect as nats_connect  # noqa: E402
from schemas import events as ev  # noqa: E402


def run_seconds(run_s: float, jitter: float, task_id: str, attempt: int) -> float:
    """What a dispatch takes: ``run_s`` spread by ``jitter`` (0.5: from 0.5x to 1.5x), the same
    for the same task attempt in every run (a hash of its id, not a random draw)."""
    if jitter <= 0:
        return run_s
    h = int.from_bytes(hashlib.blake2b(f"{task_id}:{attempt}".encode(), digest_size=8).digest(), "big")
    return run_s * (1.0 + jitter * (2.0 * h / 2**64 - 1.0))


def _sleeping_run(run_s: float, jitter: float) -> Any:
    """An `Execution.run` that takes `run_seconds` and succeeds."""

    async def run(d: ev.TaskDispatched, *_args: object) -> RunReport:
        seconds = run_seconds(run_s, jitter, d.task_id, d.attempt)
        await asyncio.sleep(seconds)
        return RunReport(result=RunResult(exit_code=0, duration_s=seconds))

    return run


async def run(url: str, nodes: int, slots: int, stop: asyncio.Event, run_s: float = 0.0, jitter: float = 0.0) -> None:
    agents: list[Agent] = []
    for i in range(1, nodes + 1):
        nc = await nats_connect(url, name=f"sim-node-{i}", max_reconnect_attempts=-1)
        a = Agent(nc, AgentSettings(node_id=f"sim-{i:03d}", url=url, slots=slots))
        a.execution.run = _sleeping_run(run_s, jitter)  # type: ignore[method-assign]
        agents.append(a)
    await agents[0].log.ensure_stream()
    for a in agents:
        await a.register()
    tasks = [asyncio.create_task(a.work(stop)) for a in agents]
    tasks += [asyncio.create_task(a.observe_forever(stop)) for a in agents]
    print("ready", flush=True)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for a in agents:
        await a.nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--run-s", type=float, default=0.0, help="seconds each dispatch takes (0: none)")
    ap.add_argument("--jitter", type=float, default=0.0, help="spread of --run-s: 0.5 gives 0.5x..1.5x per task")
    args = ap.parse_args()
    if args.run_s < 0:
        ap.error(f"--run-s must be 0 or more, got {args.run_s}")
    if not 0 <= args.jitter < 1:
        ap.error(f"--jitter must be in [0, 1), got {args.jitter}")

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args.url, args.nodes, args.slots, stop, args.run_s, args.jitter)

    asyncio.run(go())


if __name__ == "__main__":
    main()

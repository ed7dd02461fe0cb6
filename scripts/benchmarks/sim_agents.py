"""Simulated nodes for benchmarks: N real node agents in one process, each with its own NATS
connection, that run no command (a dispatch "runs" in no time and succeeds).

Everything else is the real agent (`node_agent.agent.Agent`): registration, observations, the
node's durable pull consumer, the guarded TaskStarted and TaskCompleted appends and the ack.
Only `Execution.run` is replaced, so a 100-node system fits on one small machine; use it where
the figure measured is the orchestrator's (decision latency), not the cost of starting processes.

    python scripts/benchmarks/sim_agents.py --url nats://127.0.0.1:4222 --nodes 100 [--slots 1]

Runs until SIGTERM/SIGINT; prints "ready" on stdout once every agent registered.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node_agent.agent import Agent, AgentSettings  # noqa: E402
from node_agent.report import RunReport  # noqa: E402
from node_agent.runner import RunResult  # noqa: E402
from orchestrator.connection import connect as nats_connect  # noqa: E402


async def _no_run(*_args: object) -> RunReport:
    await asyncio.sleep(0)
    return RunReport(result=RunResult(exit_code=0, duration_s=0.0))


async def run(url: str, nodes: int, slots: int, stop: asyncio.Event) -> None:
    agents: list[Agent] = []
    for i in range(1, nodes + 1):
        nc = await nats_connect(url, name=f"sim-node-{i}", max_reconnect_attempts=-1)
        a = Agent(nc, AgentSettings(node_id=f"sim-{i:03d}", url=url, slots=slots))
        a.execution.run = _no_run  # type: ignore[method-assign]
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
    args = ap.parse_args()

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args.url, args.nodes, args.slots, stop)

    asyncio.run(go())


if __name__ == "__main__":
    main()

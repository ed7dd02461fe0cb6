"""The console process: connect, follow the views and the log, serve HTTP until stopped."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import uvicorn

from orchestrator.console.app import ConsoleSettings, build_app, event_id
from orchestrator.console.state import ConsoleState
from orchestrator.errors import OrchestratorError
from orchestrator.runtime.connection import connect


def _judge_sync(nats_url: str, verb: str, graph: str, task: str, by: str, reason: str) -> int:
    from eventsourcing.persistence import OperationalError

    from orchestrator.writeside.application import Orchestrator

    try:
        application = Orchestrator(env={"NIYANTRA_NATS_URL": nats_url})
    except OperationalError as e:
        raise OrchestratorError(f"cannot connect to NATS at {nats_url}: {e}") from e
    try:
        command = application.approve if verb == "approve" else application.reject
        return command(graph, task, by, reason, datetime.now(UTC), event_id(verb))
    except OperationalError as e:
        raise OrchestratorError(f"cannot write to NATS at {nats_url}: {e}") from e
    finally:
        application.close()


async def serve(settings: ConsoleSettings, started: Any = None) -> None:
    """Run the console until SIGTERM/SIGINT; ``started`` (an asyncio.Event) is set once it listens."""
    nc = await connect(settings.nats_url)
    state = ConsoleState(nc)
    await state.start()

    async def judge(verb: str, graph: str, task: str, by: str, reason: str) -> int:
        return await asyncio.to_thread(_judge_sync, settings.nats_url, verb, graph, task, by, reason)

    app = build_app(settings, state, judge)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", lifespan="off")
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if started is not None:
        started.set()
    try:
        await serving
    finally:
        await state.stop()
        await nc.close()

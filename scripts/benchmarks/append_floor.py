"""The floor under the decision loop: how long a bare append takes to be acknowledged here.

Against a running server (the one `scripts/bench_loop` started, durable, ``sync_interval:
always``), on a scratch stream with the EVENTS stream's settings (file storage, atomic batches
on), nothing else in the append path: one message of a dispatch's size appended and awaited
(``single``), and atomic batches of ``--batch`` such messages (``batch``, one ack per batch, as
the decider appends a round). Prints JSON with p50/p99 in ms; deletes the scratch stream.

    python scripts/benchmarks/append_floor.py --url nats://127.0.0.1:4222 [--n 200] [--batch 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestrator.runtime.connection import connect as nats_connect  # noqa: E402
from orchestrator.writeside.eventlog import Append, EventLog  # noqa: E402

STREAM = "NIYANTRA_BENCH_APPEND_FLOOR"


def _ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "n": len(s),
        "p50": round(s[len(s) // 2], 3),
        "p99": round(s[min(len(s) - 1, round(0.99 * (len(s) - 1)))], 3),
        "max": round(s[-1], 3),
    }


async def measure(url: str, n: int, batch: int, size: int, stream: str = STREAM) -> dict[str, object]:
    nc = await nats_connect(url, name="bench-append-floor")
    subject = f"bench.{stream.lower()}"
    log = EventLog(nc, stream=stream, subjects=(f"{subject}.>",))
    try:
        await log.ensure_stream(replicas=1)
        payload = b"x" * size
        single: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            await log.append(Append(f"{subject}.s{i}", payload, {"Nats-Msg-Id": f"s{i}"}))
            single.append((time.perf_counter() - t0) * 1000)
        batches: list[float] = []
        for j in range(max(n // 4, 1)):
            items = [Append(f"{subject}.b{j}.{k}", payload, {"Nats-Msg-Id": f"b{j}.{k}"}) for k in range(batch)]
            t0 = time.perf_counter()
            await log.append_atomic(items)
            batches.append((time.perf_counter() - t0) * 1000)
        return {"message_bytes": size, "single_ms": _ms(single), "batch": batch, "batch_ms": _ms(batches)}
    finally:
        await nc.jetstream().delete_stream(stream)
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--n", type=int, default=200, help="single appends (and n/4 batches)")
    ap.add_argument("--batch", type=int, default=25, help="messages per atomic batch")
    ap.add_argument("--stream", default=STREAM, help="name of the scratch stream (deleted at the end)")
    ap.add_argument("--size", type=int, default=15_000, help="bytes per message (a 100-candidate dispatch: ~15 kB)")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(measure(args.url, args.n, args.batch, args.size, args.stream)), indent=2))


if __name__ == "__main__":
    main()

"""Celery 5 with Redis (Debian's redis-server, ``appendfsync always``) as broker and result backend.

The runner starts Redis (redis_server.py) and one worker (``celery worker``, prefork pool, one
process per core, late acks; celery_app.py), then submits each workload as Celery's canvas puts it:
``independent`` is one ``group`` of 20,000 signatures, waited for with ``GroupResult.get``;
``layered`` cannot be said as a DAG of 2 dependencies in Celery's canvas, so each layer is one
``group`` run after the whole layer before has finished (a barrier per layer: stronger than the
workload needs, so the peer pays for waits the DAG does not have; a ``chain`` of groups, i.e.
nested chords, does the same inside Redis). Stored: the AOF's bytes and commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TreeMeter, arguments, emit, guarded, layers_of, measured, say
from redis_server import aof_stats, redis_server

HERE = Path(__file__).resolve().parent


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(HERE)}
    cmd = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork"]
    cmd += ["--concurrency", str(os.cpu_count() or 2), "--loglevel", "WARNING"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(cmd, env=env, cwd=HERE, stdout=sys.stderr)  # stdout is the JSON's


def wait_worker(app: Any, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not app.control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not answer a ping in 60 s")


def main() -> None:
    args = arguments(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp, redis_server(Path(tmp)) as port:
        url = f"redis://127.0.0.1:{port}"
        os.environ["BENCH_REDIS_URL"] = url
        sys.path.insert(0, str(HERE))
        import celery
        import redis
        from celery import group
        from celery_app import app, noop

        out: dict[str, Any] = {
            "peer": "celery",
            "versions": {"celery": celery.__version__, "redis-py": redis.__version__, "redis-server": redis_version()},
            "setup": {
                "broker": "redis",
                "result_backend": "redis",
                "appendfsync": "always",
                "pool": "prefork",
                "concurrency": os.cpu_count(),
                "acks_late": True,
            },
        }
        stored = lambda: aof_stats(Path(tmp))  # noqa: E731
        worker = start_worker(url)
        try:
            wait_worker(app)
            group(noop.s() for _ in range(10))().get(timeout=60)  # warm-up
            meter = TreeMeter()

            def run(tasks: dict[str, list[str]]) -> str | None:
                for layer in layers_of(tasks):
                    group(noop.s() for _ in layer)().get(timeout=3600)
                return "a barrier per layer (Celery's canvas has no DAG)" if len(layers_of(tasks)) > 1 else None

            for name, tasks in args.loads.items():
                say(f"celery {name}: {len(tasks)} tasks")
                out[name] = guarded(name, lambda t=tasks, n=name: measured(n, t, run, stored, meter))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    emit(out)


def redis_version() -> str:
    done = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False)
    return next((w.split("=", 1)[1] for w in done.stdout.split() if w.startswith("v=")), done.stdout.strip())


if __name__ == "__main__":
    main()

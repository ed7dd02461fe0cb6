"""DBOS Transact with its system database on SQLite (DBOS's own defaults there: a rollback journal,
``synchronous=FULL``, so every commit is fsynced).

Each task is a workflow of one no-op step; a parent workflow fans each workload out on a DBOS
queue (``queue.enqueue``, DBOS's idiom for running work concurrently and durably) and waits for
the handles: ``independent`` enqueues all 20,000 at once; ``layered`` enqueues a layer once the
whole layer before has finished (a barrier per layer: DBOS has no DAG, and a workflow waiting on its
2 dependencies' handles would hold a worker thread each). The queue's polling interval is lowered
from 1 s to ``--poll`` (50 ms), else every layer would wait up to a second. Stored: the SQLite
file's bytes and its rows over every table.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from common import TreeMeter, arguments, emit, guarded, layers_of, measured, say, sqlite_stats

POLL_S = 0.05


def main() -> None:
    args = arguments(__doc__)
    import dbos
    from dbos import DBOS

    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as tmp:
        db = Path(tmp) / "dbos.sqlite"
        DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{db}", "log_level": "WARNING"})
        logging.getLogger("dbos").setLevel(logging.WARNING)

        @DBOS.step()
        def noop() -> None:
            return None

        @DBOS.workflow()
        def task(tid: str) -> str:
            noop()
            return tid

        @DBOS.workflow()
        def fan_out(layers: list[list[str]]) -> int:
            done = 0
            for layer in layers:
                handles = [queue.enqueue(task, tid) for tid in layer]
                done += len([h.get_result() for h in handles])
            return done

        DBOS.launch()
        queue = DBOS.register_queue("bench", polling_interval_sec=POLL_S)
        out: dict[str, Any] = {
            "peer": "dbos",
            "versions": {"dbos": dbos.__version__ if hasattr(dbos, "__version__") else _version("dbos")},
            "setup": {"system_database": "sqlite (journal, synchronous=FULL)", "queue_polling_s": POLL_S},
        }
        try:
            fan_out([[f"warm-{i}" for i in range(10)]])
            meter = TreeMeter()

            def run(tasks: dict[str, list[str]]) -> str | None:
                layers = layers_of(tasks)
                assert fan_out(layers) == len(tasks)
                return "a barrier per layer (queue fan-out, fan-in)" if len(layers) > 1 else None

            for name, tasks in args.loads.items():
                say(f"dbos {name}: {len(tasks)} tasks")
                out[name] = guarded(name, lambda t=tasks, n=name: measured(n, t, run, lambda: sqlite_stats(db), meter))
        finally:
            DBOS.destroy()
    emit(out)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()

"""The Celery app of the Celery peer (imported by its worker and its client): Redis as broker and
result backend (the URL from ``BENCH_REDIS_URL``), late acks (a task's message stays in Redis until
the task is done, so a worker that dies loses nothing), JSON messages, one no-op task."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
app = Celery("bench", broker=f"{URL}/0", backend=f"{URL}/1")
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(*_deps: Any) -> None:
    return None

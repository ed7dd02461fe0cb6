"""The view buckets in KV: made when missing, and the checkpoint each holds.

Apart from the projector runner (`projections.runner`) so that a reader of a view (the CLI's
``wait`` and ``why``, the decider, the console) needs neither the folds nor the runner to open one.
"""

from __future__ import annotations

from typing import Any

import msgspec
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType

from orchestrator.runtime.connection import replicas as default_replicas
from projections.fold import Checkpoint
from schemas import subjects as S

__all__ = ["ensure_bucket", "read_checkpoint"]


async def ensure_bucket(nc: Any, bucket: str, *, replicas: int | None = None) -> None:
    """Create a view bucket (memory storage, history 1, atomic batches allowed) if missing.

    ``replicas`` defaults to ``NIYANTRA_REPLICAS`` (see `orchestrator.runtime.connection`).
    """
    replicas = replicas or default_replicas()
    js = nc.jetstream()
    try:
        await js.key_value(bucket)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
        try:
            await js.create_key_value(
                KeyValueConfig(bucket=bucket, history=1, storage=StorageType.MEMORY, replicas=replicas)
            )
        except nats.js.errors.BadRequestError:
            pass  # created concurrently by another process: the bucket exists, which is all we need
    info = await js.stream_info(f"KV_{bucket}")
    if not info.config.allow_atomic:
        info.config.allow_atomic = True
        await js.update_stream(info.config)


async def read_checkpoint(nc: Any, bucket: str) -> Checkpoint:
    """The checkpoint stored in a view bucket (seq 0 when absent)."""
    kv = await nc.jetstream().key_value(bucket)
    try:
        entry = await kv.get(S.CHECKPOINT_KEY)
    except nats.js.errors.KeyNotFoundError:
        return Checkpoint()
    return msgspec.json.decode(entry.value or b"{}", type=Checkpoint)

"""An in-memory copy of one KV view bucket, kept current by a watcher (the decider, the
watchdog and the CLI's live views read the read models through it)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import msgspec

from orchestrator.runtime.ordered import BucketEntry, watch_bucket
from projections.fold import Checkpoint
from schemas import subjects as S

log = logging.getLogger("niyantra.viewmirror")


class ViewMirror:
    """An in-memory copy of one KV view bucket, kept current by a watcher.

    ``types`` maps a key's first token (``task``, ``graph``, ``node``) to the struct its
    values decode to; ``keys`` narrows the copy to some keys (one graph's: `graph_keys`), so a
    reader of one graph does not load every run the bucket ever held.
    """

    def __init__(
        self,
        nc: Any,
        bucket: str,
        types: dict[str, type[Any]],
        changed: asyncio.Event | None = None,
        keys: tuple[str, ...] = (),
    ) -> None:
        self.nc = nc
        self.bucket = bucket
        self.keys = keys  # only these keys (with the checkpoint among them to know the seq); () all
        self.values: dict[str, Any] = {}
        self.seq = 0
        self.changed_at: datetime | None = None  # when the server stored the checkpoint now held
        self.first_change_at: datetime | None = None  # the first checkpoint since the reader last reset it
        self.on_value: Any = None  # called as on_value(key, old, new) for every value change
        self.consistent = True  # False between a batch's first value and its checkpoint
        self.changed = changed or asyncio.Event()
        self.initialised = asyncio.Event()
        self._decoders = {prefix: msgspec.json.Decoder(t) for prefix, t in types.items()}
        self._cp_decoder = msgspec.json.Decoder(Checkpoint)
        self._watcher: Any = None

    async def start(self) -> None:
        """Start watching; returns once the initial values are loaded."""
        self._watcher = await watch_bucket(self.nc, self.bucket, self.keys, sink=self._take)
        await self.initialised.wait()

    async def stop(self) -> None:
        """Stop the watcher."""
        if self._watcher is not None:
            await self._watcher.stop()

    def _take(self, entry: BucketEntry | None) -> None:
        """One entry of the watch (None: the initial values are in), as it arrives."""
        if entry is None:
            self.initialised.set()
            return
        self._apply(entry.key, entry.value)
        if entry.key == S.CHECKPOINT_KEY:
            self.changed_at = entry.created
            self.first_change_at = self.first_change_at or self.changed_at
        if entry.delta == 0:
            self.initialised.set()
            self.changed.set()

    def _apply(self, key: str, value: bytes | None) -> None:
        if key == S.CHECKPOINT_KEY and value:
            self.seq = self._cp_decoder.decode(value).seq
            self.consistent = True  # a projector writes its checkpoint last in each atomic batch
            return
        self.consistent = False
        old = self.values.get(key)
        if not value:
            self.values.pop(key, None)
            new = None
        else:
            decoder = self._decoders.get(key.partition(".")[0])
            if decoder is None:
                return
            try:
                new = self.values[key] = decoder.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                log.warning("skipped malformed view value %s/%s: %s", self.bucket, key, e)
                return
        if self.on_value is not None:
            self.on_value(key, old, new)


def graph_keys(graph_id: str) -> tuple[str, ...]:
    """The readiness view's keys of one graph (its entry and its tasks) and the checkpoint."""
    return (S.graph_key(graph_id), f"task.{S.token(graph_id)}.>", S.CHECKPOINT_KEY)

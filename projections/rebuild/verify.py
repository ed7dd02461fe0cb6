"""`verify`: each live KV view compared with a rebuild at the sequence it reflects.

It takes a consistent snapshot of each live bucket (the bucket's stream did not move while it
was read), folds the log up to exactly the sequence that snapshot's checkpoint names, with the
parameters it names, and compares every key byte for byte (dead letters included, the
checkpoint's bookkeeping excluded). Views that keep moving (agents report every few seconds) are
simply read again; a difference that persists over ``attempts`` rounds is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator.runtime.ordered import watch_bucket
from projections.buckets import ensure_bucket
from projections.errors import ProjectionError
from projections.fold import Checkpoint
from projections.rebuild.build import advance, stream_head
from projections.rebuild.folds import Rebuild, new_rebuild
from projections.runner import PROJECTIONS
from schemas import subjects as S

_cp = msgspec.json.Decoder(Checkpoint)


@dataclass
class LiveView:
    """A consistent snapshot of one live view bucket."""

    checkpoint: Checkpoint
    values: dict[str, bytes] = field(default_factory=dict)


async def _read_bucket(nc: Any, bucket: str, idle_s: float = 5.0) -> dict[str, bytes]:
    """Every key's last value; ProjectionError when nothing arrives for ``idle_s`` before all have."""
    watch = await watch_bucket(nc, bucket)
    out: dict[str, bytes] = {}
    try:
        while True:
            try:
                entry = await watch.next(timeout=idle_s)
            except TimeoutError as e:
                why = f"nothing arrived for {idle_s:.0f}s after {len(out)} keys"
                raise ProjectionError(f"reading {bucket}: {why}") from e
            if entry is None:
                break
            if entry.value:
                out[entry.key] = entry.value
            else:
                out.pop(entry.key, None)
    finally:
        await watch.stop()
    return out


async def live_view(nc: Any, bucket: str, *, attempts: int = 50) -> LiveView:
    """Read a bucket whole while its stream does not move (retried while the projector writes)."""
    await ensure_bucket(nc, bucket)
    for _ in range(attempts):
        before = await stream_head(nc, f"KV_{bucket}")
        values = await _read_bucket(nc, bucket)
        # every batch a projector writes ends with the checkpoint: a written bucket read without it
        # is a watcher that ended early (nats-py can report "no pending" before delivering), not a view
        complete = S.CHECKPOINT_KEY in values or before == 0
        if complete and await stream_head(nc, f"KV_{bucket}") == before:
            raw = values.pop(S.CHECKPOINT_KEY, None)
            return LiveView(_cp.decode(raw) if raw else Checkpoint(), values)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"view bucket {bucket} kept changing while it was read ({attempts} attempts)")


def differences(name: str, rebuilt: Mapping[str, bytes], live: Mapping[str, bytes], limit: int = 20) -> list[str]:
    """Human-readable differences between a rebuilt and a live view (at most ``limit``)."""
    out: list[str] = []
    for key in sorted(rebuilt.keys() | live.keys()):
        a, b = rebuilt.get(key), live.get(key)
        if a == b:
            continue
        if a is None:
            out.append(f"{name}: {key}: only in the live view")
        elif b is None:
            out.append(f"{name}: {key}: missing from the live view")
        else:
            out.append(
                f"{name}: {key}: rebuilt {a.decode(errors='replace')[:300]} != live {b.decode(errors='replace')[:300]}"
            )
        if len(out) >= limit:
            break
    return out


@dataclass
class Verdict:
    """The outcome of verifying one view."""

    name: str
    seq: int
    keys: int
    problems: list[str]


async def verify_one(nc: Any, name: str, *, rounds: int = 10) -> Verdict:
    """Compare one live view with a rebuild at the sequence it reflects (a few rounds if it moves)."""
    p = PROJECTIONS[name]
    problems: list[str] = []
    rb: Rebuild | None = None
    live = LiveView(Checkpoint())
    for _ in range(rounds):
        live = await live_view(nc, p.bucket)
        if rb is None or live.checkpoint.seq < rb.seq or live.checkpoint.params != rb.folds[name].checkpoint.params:
            rb = new_rebuild([name], {name: live.checkpoint.params})
        await advance(nc, rb, live.checkpoint.seq)
        problems = differences(name, rb.values(name), live.values)
        if not problems:
            break
        await asyncio.sleep(0.2)
    return Verdict(name, live.checkpoint.seq, len(live.values), problems)


async def verify(nc: Any, names: Sequence[str] | None = None) -> list[Verdict]:
    """Verify every named view (default: all)."""
    return [await verify_one(nc, n) for n in (names or list(PROJECTIONS))]

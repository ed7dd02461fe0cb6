"""Rebuild every view from sequence 1 and compare it with the live KV views.

`rebuild` reads the EVENTS stream once (`projections.logread`), decodes each message once and
folds it into one `Fold` per projection (the same code the projector processes run), so
rebuilding all views costs about one replay; when a core is idle it hands the chunks to a worker
process folding all views but the first at the same time (`projections.rebuild_worker`).
`verify` takes a consistent snapshot of each live bucket (the bucket's stream did not move while
it was read), folds the log up to exactly the sequence that snapshot's checkpoint names, with
the parameters it names, and compares every key byte for byte (dead letters included, the
checkpoint's bookkeeping excluded). Views that keep moving (agents report every few seconds) are
simply read again; a difference that persists over ``attempts`` rounds is reported.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator.runtime.ordered import watch_bucket
from projections.errors import ProjectionError
from projections.fold import Checkpoint, Fold
from projections.logread import read_chunks
from projections.rebuild_worker import Chunk, Feed
from projections.runner import PROJECTIONS, ensure_bucket
from schemas import codec
from schemas import subjects as S
from schemas.errors import MalformedEvent

_enc = msgspec.json.Encoder()
_cp = msgspec.json.Decoder(Checkpoint)


@dataclass
class Rebuild:
    """Folds of several projections advanced together over one read of the stream."""

    folds: dict[str, Fold[Any]]
    seq: int = 0
    events: int = 0
    seconds: float = 0.0

    def apply(self, data: bytes, subject: str, seq: int) -> None:
        """Decode once, fold into every projection; a gap in the sequence is an error, never skipped."""
        if seq != self.seq + 1:
            raise ProjectionError(f"rebuild: gap in the stream: seq {seq} after {self.seq}")
        try:
            event = codec.decode(data, subject=subject, seq=seq)
        except MalformedEvent as e:
            for f in self.folds.values():
                f.skip(subject, seq, "malformed", str(e))
        else:
            for f in self.folds.values():
                f.apply_event(event, subject, seq)
        self.seq = seq
        self.events += 1

    def apply_chunk(self, chunk: Sequence[tuple[int, str, bytes]]) -> None:
        """`apply` for each ``(seq, subject, data)`` of a chunk: one loop, each evolve called
        directly (what `Fold.apply_event` does, without a call and lookups per fold and event)."""
        folds = [(f, f.p.evolve) for f in self.folds.values()]
        decode = codec.decode
        last = self.seq
        try:
            for seq, subject, data in chunk:
                if seq != last + 1:
                    raise ProjectionError(f"rebuild: gap in the stream: seq {seq} after {last}")
                try:
                    event = decode(data, subject=subject, seq=seq)
                except MalformedEvent as e:
                    for f, _ in folds:
                        f.skip(subject, seq, "malformed", str(e))
                else:
                    for f, evolve in folds:
                        if seq > f.view.seq:
                            try:
                                f.view = evolve(f.view, event, seq)
                            except Exception as e:  # noqa: BLE001 -- a dead letter, as in Fold.apply_event
                                f.failed(subject, seq, e)
                last = seq
        finally:
            self.events += last - self.seq
            self.seq = last

    def values(self, name: str) -> dict[str, bytes]:
        """Every key of one view, encoded as the projector writes it."""
        return {k: _enc.encode(v) for k, v in self.folds[name].snapshot().items()}


def new_rebuild(names: Sequence[str], params: Mapping[str, Mapping[str, float]] | None = None) -> Rebuild:
    """Empty folds for ``names`` (parameters per projection, defaults otherwise)."""
    return Rebuild({n: Fold(PROJECTIONS[n], (params or {}).get(n)) for n in names})


async def stream_head(nc: Any, stream: str = S.STREAM) -> int:
    """The last sequence of a stream."""
    info = await nc.jetstream().stream_info(stream)
    return int(info.state.last_seq)


async def advance(
    nc: Any,
    rb: Rebuild,
    upto: int,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_chunk: Callable[[Chunk], Awaitable[None]] | None = None,
) -> None:
    """Fold the stream's messages after ``rb.seq`` up to and including ``upto`` (each chunk
    handed to ``on_chunk`` first: a split rebuild's worker folds it at the same time).

    After each chunk the objects alive (mostly the views' entries: they live until the end) are
    moved out of the cyclic collector's generations (`gc.freeze`), and back at the end: a fold
    allocates millions of objects, and each full collection would otherwise walk every entry of
    the views again (a tenth to a quarter of the CPU of a million-event rebuild here). Reference
    counting frees what dies as
    before; only garbage cycles wait until the end."""
    if upto <= rb.seq:
        return
    started = time.perf_counter()
    freeze = gc.isenabled()
    try:
        async for chunk in read_chunks(nc, rb.seq + 1, upto):
            if on_chunk is not None:
                await on_chunk(chunk)
            rb.apply_chunk(chunk)
            if freeze:
                gc.freeze()  # see the docstring
            if on_progress is not None:
                on_progress(rb.seq)
    finally:
        if freeze:
            gc.unfreeze()
        rb.seconds += time.perf_counter() - started


async def rebuild(
    nc: Any, names: Sequence[str] | None = None, upto: int | None = None, *, split: bool | None = None
) -> Rebuild:
    """Every named view (default: all) rebuilt from sequence 1 up to ``upto`` (default: the head).

    With ``split`` the first view is folded here and the others by a worker process fed the
    same chunks (`projections.rebuild_worker`); their entries in ``folds`` are then `BuiltView`s.
    The views are the same either way; splitting costs about a third more CPU in all (each
    process decodes every event; the worker's views are encoded to be handed back) and pays off
    only when a second core is free, so by default (``None``) it splits when the one-minute load
    average leaves a core idle (`spare_core`). ``seconds`` is the wall time of the whole
    rebuild, the worker's included."""
    started = time.perf_counter()
    names = list(names or PROJECTIONS)
    upto = await stream_head(nc) if upto is None else upto
    if split is None:
        split = spare_core()
    if not split or len(names) < 2:
        rb = new_rebuild(names)
        await advance(nc, rb, upto)
        return rb
    feed = Feed.start(names[1:])
    try:
        rb = new_rebuild(names[:1])
        await advance(nc, rb, upto, on_chunk=feed.send)
        built = await feed.finish()
    finally:
        await feed.stop()
    folds: dict[str, Any] = {**rb.folds, **built}  # a BuiltView answers what a Fold does after a rebuild
    rb.folds = {n: folds[n] for n in names}
    rb.seconds = time.perf_counter() - started
    return rb


def spare_core() -> bool:
    """Whether this machine has a core nobody uses now (1-minute load average ≤ cores − 1)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average here: trust the core count
        return cores > 1
    return cores > 1 and load <= cores - 1


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

"""Every view rebuilt from sequence 1 (`rebuild`): the EVENTS stream read once
(`projections.logread`), each message decoded once and folded into one `Fold` per projection
(the same code the projector processes run), so rebuilding all views costs about one replay;
when a core is idle the chunks also go to a worker process folding all views but the first at
the same time (`projections.rebuild.worker`).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from projections.logread import read_chunks
from projections.rebuild.folds import Rebuild, new_rebuild
from projections.rebuild.worker import Chunk, Feed
from projections.runner import PROJECTIONS
from schemas import subjects as S


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
    same chunks (`projections.rebuild.worker`); their entries in ``folds`` are then `BuiltView`s.
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

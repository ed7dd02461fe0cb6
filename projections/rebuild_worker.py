"""The second process of a split rebuild: some views folded from its own read of the log.

A rebuild of several views is bound by one core: reading, decoding and folding every event in
one Python process. `rebuild` (``projections.rebuild``) therefore splits the views in two: the
first stays in the calling process, the others go to one worker process
(``python -m projections.rebuild_worker``), which connects to NATS itself, reads the same
stretch of the log (`projections.logread`), folds it with the same `Fold` code and writes, when
done, every key of its views already encoded (as the projector would write it), its dead
letters and checkpoints to stdout as one msgpack document. The caller keeps them as `BuiltView`s:
their ``snapshot()`` holds `msgspec.Raw` values, so encoding them again gives the same bytes.

Both processes read the log up to the same sequence and fold it with the same code, so the
result is the one a single process gets (tests compare them). The worker exits non-zero (and
says why on stderr) when it cannot connect or read; the caller then fails the rebuild.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import nats.errors

from projections.errors import ProjectionError
from projections.fold import Checkpoint, DeadLetter

ROOT = Path(__file__).resolve().parents[1]


class _Result(msgspec.Struct, frozen=True):
    """One view as the worker hands it over."""

    values: dict[str, bytes]
    dead: dict[str, bytes]
    checkpoint: bytes
    seq: int
    events: int


_dec = msgspec.msgpack.Decoder(dict[str, _Result])
_cp = msgspec.json.Decoder(Checkpoint)
_dl = msgspec.json.Decoder(DeadLetter)


@dataclass
class BuiltView:
    """A view rebuilt by the worker: encoded values, what a `Fold` reports after a rebuild."""

    name: str
    checkpoint: Checkpoint
    values: dict[str, msgspec.Raw] = field(default_factory=dict)
    dead: dict[str, DeadLetter] = field(default_factory=dict)
    seq: int = 0

    def snapshot(self) -> dict[str, Any]:
        """Every key's value (`msgspec.Raw`: encoding it gives the bytes the worker encoded)."""
        return dict(self.values)


async def run_worker(url: str, upto: int, names: Sequence[str]) -> dict[str, _Result]:
    """Rebuild ``names`` up to ``upto`` from a connection of our own."""
    from orchestrator.connection import connect
    from projections.rebuild import advance, new_rebuild

    nc = await connect(url, connect_timeout=5, max_reconnect_attempts=1, allow_reconnect=False)
    try:
        rb = new_rebuild(names)
        await advance(nc, rb, upto)
    finally:
        await nc.close()
    enc = msgspec.json.Encoder()
    out: dict[str, _Result] = {}
    for name, f in rb.folds.items():
        values = {k: enc.encode(v) for k, v in f.snapshot().items()}  # dead letters included
        dead = {k: enc.encode(v) for k, v in f.dead.items()}
        out[name] = _Result(values, dead, enc.encode(f.checkpoint), f.view.seq, rb.events)
    return out


async def start_worker(url: str, upto: int, names: Sequence[str]) -> asyncio.subprocess.Process:
    """Start a worker process rebuilding ``names`` up to ``upto`` (this checkout's code)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "projections.rebuild_worker",
        url,
        str(upto),
        *names,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


async def collect(proc: asyncio.subprocess.Process, names: Sequence[str]) -> dict[str, BuiltView]:
    """The worker's views once it has finished; a worker that failed fails the rebuild."""
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise ProjectionError(
            f"rebuild worker for {', '.join(names)} exited with code {proc.returncode} (its error is above)"
        )
    try:
        results = _dec.decode(out)
    except msgspec.DecodeError as e:
        raise ProjectionError(f"rebuild worker for {', '.join(names)}: unreadable result: {e}") from e
    if sorted(results) != sorted(names):
        raise ProjectionError(f"rebuild worker returned {sorted(results)}, asked for {sorted(names)}")
    return {
        n: BuiltView(
            name=n,
            checkpoint=_cp.decode(r.checkpoint),
            values={k: msgspec.Raw(v) for k, v in r.values.items()},
            dead={k: _dl.decode(v) for k, v in r.dead.items()},
            seq=r.seq,
        )
        for n, r in results.items()
    }


def main(argv: Sequence[str]) -> int:
    """``rebuild_worker <url> <upto> <view>...``: the result on stdout, problems on stderr."""
    if len(argv) < 3 or not argv[1].isdigit():
        sys.stderr.write("usage: python -m projections.rebuild_worker <nats url> <upto seq> <view>...\n")
        return 2
    url, upto, names = argv[0], int(argv[1]), list(argv[2:])
    try:
        results = asyncio.run(run_worker(url, upto, names))
    except (OSError, ProjectionError, TimeoutError, nats.errors.Error) as e:
        sys.stderr.write(f"rebuild worker ({', '.join(names)}): {type(e).__name__}: {e}\n")
        return 1
    sys.stdout.buffer.write(msgspec.msgpack.encode(results))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # the views die with the process: no minutes of freeing objects one by one

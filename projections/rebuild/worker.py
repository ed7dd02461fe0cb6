"""The second process of a split rebuild: some views folded from the log the caller reads.

A rebuild of several views is bound by one core: reading, decoding and folding every event in
one Python process. `rebuild` (``projections.rebuild.build``) therefore splits the views in two: the
first stays in the calling process, the others go to one worker process
(``python -m projections.rebuild.worker <view>...``). The caller reads the log once and hands
each chunk it folds to the worker too (`Feed`: one frame per chunk on the worker's stdin); the
worker decodes and folds it with the same `Rebuild` code (`Rebuild.apply_chunk`, which also
refuses a gap in the sequence) and, at the end of its input, writes every key of its views
already encoded (as the projector would write it), its dead letters and checkpoints to stdout
as one msgpack document. The caller keeps them as `BuiltView`s: their ``snapshot()`` holds
`msgspec.Raw` values, so encoding them again gives the same bytes.

Both processes fold the same messages in the same order with the same code, so the result is
the one a single process gets (tests compare them). A worker that fails exits non-zero and says
why on stderr; the caller then fails the rebuild.

Frame: ``<first seq u64> <count u32> <subjects bytes u32> <data bytes u32>`` (little-endian),
then ``count`` data lengths (u32 each), the subjects joined by newlines (a subject has no
whitespace), the data concatenated.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import queue
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from projections.errors import ProjectionError
from projections.fold import Checkpoint, DeadLetter
from projections.rebuild.folds import new_rebuild

ROOT = Path(__file__).resolve().parents[2]
_HEADER = struct.Struct("<QIII")
_QUEUED = 64  # frames the caller may run ahead of the worker before it waits (a frame: one chunk)
_PIPE_BYTES = 1024 * 1024
Chunk = list[tuple[int, str, bytes]]


class _Result(msgspec.Struct, frozen=True):
    """One view as the worker hands it over."""

    values: dict[str, bytes]
    dead: dict[str, bytes]
    checkpoint: bytes
    seq: int


_dec = msgspec.msgpack.Decoder(dict[str, _Result])
_cp = msgspec.json.Decoder(Checkpoint)
_dl = msgspec.json.Decoder(DeadLetter)


@dataclass
class BuiltView:
    """A view rebuilt by the worker: encoded values, what a `Fold` reports after a rebuild."""

    name: str
    checkpoint: Checkpoint
    encoded: dict[str, bytes] = field(default_factory=dict)  # dead letters included
    dead: dict[str, DeadLetter] = field(default_factory=dict)
    seq: int = 0

    def snapshot(self) -> dict[str, Any]:
        """Every key's value (`msgspec.Raw`: encoding it gives the bytes the worker encoded)."""
        return {k: msgspec.Raw(v) for k, v in self.encoded.items()}


def frame(chunk: Chunk) -> list[bytes]:
    """One chunk of consecutive messages as the parts of one frame."""
    subjects = "\n".join([s for _, s, _ in chunk]).encode()
    data = [d for _, _, d in chunk]
    blob = b"".join(data)
    lengths = array("I", [len(d) for d in data]).tobytes()
    return [_HEADER.pack(chunk[0][0], len(chunk), len(subjects), len(blob)), lengths, subjects, blob]


def read_frames(src: BinaryIO) -> Any:
    """The chunks framed on ``src`` until its end (a frame cut short is an error)."""
    while True:
        head = src.read(_HEADER.size)
        if not head:
            return
        if len(head) < _HEADER.size:
            raise ProjectionError("rebuild worker: input ends inside a frame header")
        first, count, subjects_len, data_len = _HEADER.unpack(head)
        body = src.read(4 * count + subjects_len + data_len)
        if len(body) < 4 * count + subjects_len + data_len:
            raise ProjectionError(f"rebuild worker: input ends inside the frame of seq {first}")
        lengths = array("I")
        lengths.frombytes(body[: 4 * count])
        subjects = body[4 * count : 4 * count + subjects_len].decode().split("\n")
        data = memoryview(body)[4 * count + subjects_len :]
        offsets = itertools.accumulate(lengths, initial=0)
        yield [
            (first + i, subjects[i], bytes(data[o : o + n]))
            for i, (o, n) in enumerate(zip(offsets, lengths, strict=False))
        ]


class Feed:
    """The caller's side: a worker process folding ``names`` from the chunks it is given.

    A thread of its own writes the frames to the worker's stdin (a blocking write releases the
    GIL), so the worker is fed while the caller folds; the event loop would only write between
    two of the caller's chunks, one pipe's worth at a time, and the two processes would take
    turns instead of running side by side. At most ``_QUEUED`` frames wait (back-pressure)."""

    def __init__(self, proc: subprocess.Popen[bytes], names: Sequence[str]) -> None:
        self.proc, self.names = proc, list(names)
        self.queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_QUEUED)
        self.writer = threading.Thread(target=self._write, name="rebuild-feed", daemon=True)
        self.writer.start()

    @classmethod
    def start(cls, names: Sequence[str]) -> Feed:
        """Start a worker for ``names`` (this checkout's code, this interpreter)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        cmd = [sys.executable, "-m", "projections.rebuild.worker", *names]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        with contextlib.suppress(OSError, AttributeError):  # a larger pipe (Linux): fewer wake-ups
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        return cls(proc, names)

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        broken = False
        while (parts := self.queue.get()) is not None:
            if broken:
                continue  # the worker is gone: `finish` reports how; keep taking frames so `send` never waits
            try:
                for part in parts:
                    stdin.write(part)
            except (BrokenPipeError, ValueError):
                broken = True
        with contextlib.suppress(OSError):
            stdin.close()

    async def send(self, chunk: Chunk) -> None:
        """Hand one chunk over (waits only while the worker is far behind)."""
        if not chunk:
            return
        parts = frame(chunk)
        try:
            self.queue.put_nowait(parts)
        except queue.Full:
            await asyncio.to_thread(self.queue.put, parts)

    async def finish(self) -> dict[str, BuiltView]:
        """Close the input and take the worker's views; a worker that failed fails the rebuild."""
        await asyncio.to_thread(self.queue.put, None)
        assert self.proc.stdout is not None
        out = await asyncio.to_thread(self.proc.stdout.read)
        code = await asyncio.to_thread(self.proc.wait)
        await asyncio.to_thread(self.writer.join)
        what = ", ".join(self.names)
        if code != 0:
            raise ProjectionError(f"rebuild worker for {what} exited with code {code} (its error is above)")
        try:
            results = _dec.decode(out)
        except msgspec.DecodeError as e:
            raise ProjectionError(f"rebuild worker for {what}: unreadable result: {e}") from e
        if sorted(results) != sorted(self.names):
            raise ProjectionError(f"rebuild worker returned {sorted(results)}, asked for {sorted(self.names)}")
        return {
            n: BuiltView(n, _cp.decode(r.checkpoint), r.values, {k: _dl.decode(v) for k, v in r.dead.items()}, r.seq)
            for n, r in results.items()
        }

    async def stop(self) -> None:
        """Kill the worker if it still runs (the rebuild failed here) and let the writer end."""
        if self.proc.poll() is None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
        if self.writer.is_alive():
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(None)
            await asyncio.to_thread(self.writer.join, 10)
        for f in (self.proc.stdout,):
            if f is not None:
                f.close()


def run_worker(names: Sequence[str], src: BinaryIO, dst: BinaryIO) -> None:
    """Fold the chunks framed on ``src`` into ``names``; write the views to ``dst``."""
    import gc

    rb = new_rebuild(names)
    for chunk in read_frames(src):
        rb.apply_chunk(chunk)
        gc.freeze()  # as `projections.rebuild.build.advance` does: the views' entries live to the end
    enc = msgspec.json.Encoder()
    out: dict[str, _Result] = {}
    for name, f in rb.folds.items():
        values = {k: enc.encode(v) for k, v in f.snapshot().items()}  # dead letters included
        dead = {k: enc.encode(v) for k, v in f.dead.items()}
        out[name] = _Result(values, dead, enc.encode(f.checkpoint), f.view.seq)
    dst.write(msgspec.msgpack.encode(out))
    dst.flush()


def main(names: Sequence[str]) -> int:
    """``python -m projections.rebuild.worker <view>...``: frames on stdin, views on stdout."""
    from projections.runner import PROJECTIONS

    unknown = sorted(set(names) - set(PROJECTIONS))
    if not names or unknown:
        sys.stderr.write(
            f"usage: python -m projections.rebuild.worker <view>... (unknown: {unknown}; views: {list(PROJECTIONS)})\n"
        )
        return 2
    try:
        run_worker(names, sys.stdin.buffer, sys.stdout.buffer)
    except ProjectionError as e:
        sys.stderr.write(f"rebuild worker ({', '.join(names)}): {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))  # the views die with the process: no seconds of freeing objects one by one

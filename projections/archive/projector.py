"""The archive projection: every event of the stream into Parquet files, exactly once.

Layout: ``<dir>/day=YYYY-MM-DD/events-<first seq>-<last seq>.parquet`` (hive partitioning by
the day the stream stored the event). Each file holds a contiguous range of sequences; a batch
is cut where the day changes. A file is written under a temporary name and renamed into place,
so it exists whole or not at all, and **the files are the checkpoint**: on start the archiver
resumes after the highest sequence any file holds and deletes leftover temporaries. After a
kill -9 the archive holds each event once and none is missing.

Columns: seq, subject, type, event_id, occurred_at, stored_at, graph_id, task_id, node_id,
attempt, causation_id, correlation_id, outcome and duration_s (completions), and ``json`` (the
whole event as stored). A malformed
event is archived too, with type ``_malformed``, its bytes as text and the reason in ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from orchestrator.runtime.connection import connect as nats_connect
from orchestrator.runtime.ordered import delivery, stored_at, subscribe_ordered
from schemas import codec
from schemas import events as ev
from schemas import subjects as S
from schemas.errors import MalformedEvent

log = logging.getLogger("niyantra.archive")

_FILE = re.compile(r"^events-(\d+)-(\d+)\.parquet$")
COLUMNS: dict[str, str] = {
    "seq": "BIGINT",
    "subject": "VARCHAR",
    "type": "VARCHAR",
    "event_id": "VARCHAR",
    "occurred_at": "TIMESTAMPTZ",
    "stored_at": "TIMESTAMPTZ",
    "graph_id": "VARCHAR",
    "task_id": "VARCHAR",
    "node_id": "VARCHAR",
    "attempt": "INTEGER",
    "causation_id": "VARCHAR",
    "correlation_id": "VARCHAR",
    "error": "VARCHAR",
    "json": "VARCHAR",
    "outcome": "VARCHAR",
    "duration_s": "DOUBLE",
}


def archive_row(seq: int, subject: str, data: bytes, stored_at: datetime) -> dict[str, Any]:
    """Pure: one archive row for a stored message (malformed ones included, marked)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(seq=seq, subject=subject, stored_at=stored_at.isoformat(), json=data.decode("utf-8", "replace"))
    try:
        event = codec.decode(data, subject=subject, seq=seq)
    except MalformedEvent as e:
        row.update(type="_malformed", error=str(e))
        return row
    row.update(
        type=type(event).__name__,
        event_id=event.event_id,
        occurred_at=event.occurred_at.isoformat(),
        causation_id=event.causation_id,
        correlation_id=event.correlation_id,
    )
    for name in ("graph_id", "task_id", "node_id", "attempt", "outcome"):
        row[name] = getattr(event, name, None)
    if isinstance(event, ev.TaskCompleted):
        row["duration_s"] = event.duration_s
    return row


def archived_through(directory: Path) -> int:
    """The highest sequence held by any archive file (0 for an empty archive)."""
    high = 0
    for f in directory.glob("day=*/events-*.parquet"):
        m = _FILE.match(f.name)
        if m:
            high = max(high, int(m.group(2)))
    return high


def remove_partial(directory: Path) -> int:
    """Delete temporaries a killed archiver left; return how many."""
    n = 0
    for f in directory.glob("day=*/.tmp-*"):
        f.unlink(missing_ok=True)
        n += 1
    return n


def archive_connection() -> Any:
    """A DuckDB connection for `write_parquet` (one thread: a file of a second's events needs
    no more). Opening one costs ~25 ms of CPU, ten times the copy of such a file: an archiver
    keeps its own for its lifetime."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def write_parquet(directory: Path, day: str, rows: list[dict[str, Any]], con: Any = None) -> Path:
    """Write rows (contiguous sequences of one day) as one file, atomically; return its path
    (``con``: the `archive_connection` to write with, else one opened for this file)."""
    part = directory / f"day={day}"
    part.mkdir(parents=True, exist_ok=True)
    final = part / f"events-{rows[0]['seq']:012d}-{rows[-1]['seq']:012d}.parquet"
    with tempfile.NamedTemporaryFile("wb", dir=part, prefix=".tmp-", suffix=".ndjson", delete=False) as f:
        for row in rows:
            f.write(orjson.dumps(row))
            f.write(b"\n")
        ndjson = Path(f.name)
    tmp = part / f".tmp-{final.name}"
    try:
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
        own = con is None
        con = archive_connection() if own else con
        try:
            con.execute(
                f"COPY (SELECT * FROM read_json('{ndjson}', format='newline_delimited', columns={columns}) "
                f"ORDER BY seq) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            if own:
                con.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        ndjson.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return final


@dataclass
class ArchiveBatch:
    """Rows waiting to be written: one day, contiguous sequences."""

    day: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    since: float = 0.0


class Archiver:
    """Follows EVENTS from the last archived sequence and writes Parquet files."""

    def __init__(
        self,
        nc: Any,
        directory: Path,
        *,
        max_rows: int = 20_000,
        max_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        high_water: int = 20_000,
    ) -> None:
        self.nc = nc
        self.dir = directory
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.clock = clock
        self.high_water = high_water  # delivered messages the loop has not taken, at most (as the projectors' runner)
        self.batch = ArchiveBatch()
        self.files_written = 0
        self._con: Any = None  # its `archive_connection`, opened at the first file, closed when `run` ends
        self._inbox: list[Any] = []  # messages delivered, not yet taken by the loop
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    def _flush(self) -> None:
        if self.batch.rows and self.batch.day is not None:
            if self._con is None:
                self._con = archive_connection()
            write_parquet(self.dir, self.batch.day, self.batch.rows, self._con)
            self.files_written += 1
        self.batch = ArchiveBatch()

    def _add(self, row: dict[str, Any], day: str) -> None:
        if self.batch.day not in (None, day):
            self._flush()
        if not self.batch.rows:
            self.batch.since = self.clock()
        self.batch.day = day
        self.batch.rows.append(row)
        if len(self.batch.rows) >= self.max_rows:
            self._flush()

    async def _on_msg(self, msg: Any) -> None:
        """Delivery callback: queue the message (the loop takes what arrived at once, without a
        wait per message); hold delivery while ``high_water`` wait (flow control then holds the server)."""
        self._inbox.append(msg)
        self._wake.set()
        if len(self._inbox) >= self.high_water:
            self._room.clear()
            await self._room.wait()

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], Any] | None = None) -> None:
        """Archive until ``stop`` is set; ``on_ready`` once caught up with the stream's head."""
        self.dir.mkdir(parents=True, exist_ok=True)
        removed = remove_partial(self.dir)
        start = archived_through(self.dir) + 1
        log.info("archive %s: resuming at seq %d (removed %d partial files)", self.dir, start, removed)
        info = await self.nc.jetstream().stream_info(S.STREAM)
        head = info.state.last_seq
        sub = await subscribe_ordered(
            self.nc, f"{S.ROOT}.>", stream=S.STREAM, start_seq=start, cb=self._on_msg, unbounded=True
        )
        ready = False
        last = start - 1
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.2)
                self._wake.clear()
                msgs, self._inbox = self._inbox, []
                self._room.set()
                for msg in msgs:
                    last, ns, _ = delivery(msg.reply)
                    stored = stored_at(ns) if ns else datetime.now(UTC)  # pure-ok: shell
                    self._add(archive_row(last, msg.subject, msg.data, stored), stored.date().isoformat())
                if self.batch.rows and self.clock() - self.batch.since >= self.max_wait:
                    await asyncio.to_thread(self._flush)
                if not ready and last >= head and not self.batch.rows:
                    ready = True
                    if on_ready is not None:
                        on_ready()
        finally:
            self._room.set()
            await sub.unsubscribe()
            await asyncio.to_thread(self._flush)
            if self._con is not None:
                self._con.close()
                self._con = None


async def run_archiver(
    url: str, directory: Path, stop: asyncio.Event, on_ready: Callable[[], Any] | None = None
) -> None:
    """Connect, make sure the stream exists, publish where the archive is, and archive."""

    from orchestrator.writeside.eventlog import EventLog
    from projections.archive.location import publish_location

    nc = await nats_connect(url, name="projector-archive", max_reconnect_attempts=-1)
    try:
        await EventLog(nc).ensure_stream()
        location = await publish_location(nc, directory)  # the read commands find the archive here
        log.info("archive: published its folder %s (host %s)", location.directory, location.host)
        await Archiver(nc, directory).run(stop, on_ready)
    finally:
        await nc.close()

"""What a running instance says about itself (not events: records in the KV bucket ``KV_INSTANCE``).

The archive projector writes an `ArchiveLocation` when it starts, so that a read command
(`niyantra query`, `niyantra metrics`) that reaches the instance over NATS finds the folder its
Parquet files are in without being told (docs/archive.md). Evolution as for events: new fields
get defaults, a field never changes type or meaning, unknown fields are ignored.
"""

from __future__ import annotations

import msgspec


class ArchiveLocation(msgspec.Struct, frozen=True, kw_only=True):
    """Where the instance's archive projector writes: an absolute folder on host ``host``."""

    directory: str
    host: str
    pid: int = 0

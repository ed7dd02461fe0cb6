"""Errors raised by the schemas package.

SchemaError
 ├── InvalidId          an id that is not safe as a NATS subject token
 └── MalformedEvent     bytes on the stream that do not decode to a known event
"""

from __future__ import annotations


class SchemaError(Exception):
    """Root of every error raised by `schemas`."""


class InvalidId(SchemaError, ValueError):
    """An id that cannot be used as a NATS subject token."""

    def __init__(self, what: str, value: str, why: str) -> None:
        self.what = what
        self.value = value
        self.why = why
        super().__init__(f"{what} {value!r} is not a valid id: {why}")


class MalformedEvent(SchemaError, ValueError):
    """A message whose payload is not a decodable event."""

    def __init__(self, subject: str, seq: int | None, why: str) -> None:
        self.subject = subject
        self.seq = seq
        self.why = why
        where = f"{subject} (seq {seq})" if seq is not None else subject
        super().__init__(f"malformed event on {where}: {why}")

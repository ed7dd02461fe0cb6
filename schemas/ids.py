"""Users' task and graph ids, and the one mapping from them to subject, key and file-name tokens.

An id is what the user wrote: a Nextflow process (``NFCORE_RNASEQ.PREPARE_GENOME.GUNZIP_GTF``),
an Airflow task group (``group.task``), a Bazel label (``//pkg:target``), a Make or Ninja target
(``src/a.o``, ``lib/lib z.a``). Any printable text up to `MAX_ID_CHARS` characters is an id; only
an empty id, a control character or a longer one is refused (`id_problem` names which).

Events, views, the archive and every screen carry the id itself. Where an id must be one token
of a NATS subject, a KV key or a file name, `token` maps it, deterministically and without
collisions, and `from_token` maps it back:

- an id of ``A-Z a-z 0-9 _ -`` alone is its own token (so every id valid before this mapping
  keeps its subjects, keys and message ids);
- otherwise, up to `_MAX_ESCAPED` characters, each other UTF-8 byte is written ``=XX``
  (uppercase hex), so ``a.b`` is ``a=2Eb`` and a literal ``=`` is ``=3D``: readable in a subject;
- a longer escape is ``==`` then the URL-safe base64 of the id's UTF-8 (no padding), which keeps
  two 256-character ids of four-byte characters within a subject's control line.

The three forms are told apart by their first characters (``=`` is never left as itself and an
escape is always ``=`` and two hex digits), so the mapping is injective. `file_name` bounds a
token to one file-name component (255 bytes) by hashing only the longest ones.
"""

from __future__ import annotations

import base64
import hashlib
import re

from schemas.errors import InvalidId

MAX_ID_CHARS = 256
_PLAIN = re.compile(r"^[A-Za-z0-9_\-]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-=]+$")
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_ESCAPED = 160
_MAX_FILE_NAME = 200
_HEX2 = re.compile(r"[0-9A-F]{2}")


def id_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a task or graph id, or None when it is a valid id."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "is empty"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long; at most {MAX_ID_CHARS}"
    bad = next((c for c in value if not c.isprintable() and c != " "), None)
    if bad is not None:
        return f"contains the control character {bad!r} at position {value.index(bad)}"
    return None


def check_user_id(what: str, value: str) -> str:
    """Return ``value`` if it is a valid task or graph id, else raise `InvalidId` naming why."""
    problem = id_problem(value)
    if problem is not None:
        raise InvalidId(what, str(value), problem)
    return value


def token(value: str) -> str:
    """The id as one subject token (also a valid KV key token): injective and reversible."""
    if _PLAIN.match(value):
        return value
    raw = value.encode()
    escaped = "".join(chr(b) if b in _KEEP else f"={b:02X}" for b in raw)
    if len(escaped) <= _MAX_ESCAPED:
        return escaped
    return "==" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_token(tok: str) -> str:
    """The id a `token` stands for; raises ValueError for a string no id maps to."""
    if not _TOKEN.match(tok):
        raise ValueError(f"{tok!r} is not an id token")
    if tok.startswith("=="):
        body = tok[2:]
        value = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    else:
        out, i = bytearray(), 0
        while i < len(tok):
            if tok[i] != "=":
                out.append(ord(tok[i]))
                i += 1
            elif _HEX2.match(tok, i + 1):
                out.append(int(tok[i + 1 : i + 3], 16))
                i += 3
            else:
                raise ValueError(f"{tok!r} has an '=' that is not an escape")
        value = out.decode()
    if token(value) != tok:
        raise ValueError(f"{tok!r} is not the token of any id")
    return value


def is_token(value: str) -> bool:
    """Tell whether ``value`` may be one token of a subject stem (what `token` can return)."""
    return isinstance(value, str) and bool(_TOKEN.match(value))


def file_name(value: str) -> str:
    """The id as one file-name component: its token, or for the longest ones a SHA-256 name."""
    tok = token(value)
    if len(tok) <= _MAX_FILE_NAME:
        return tok
    return "=h" + hashlib.sha256(value.encode()).hexdigest()


def task_ref(graph_id: str, task_id: str) -> str:
    """A task in message ids and run keys: ``<graph token>:<task token>`` (tokens hold no ``:``)."""
    return f"{token(graph_id)}:{token(task_id)}"

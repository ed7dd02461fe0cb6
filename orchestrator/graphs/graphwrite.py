"""Graph documents written as files: niyantra's TOML (``.toml``) or JSON (any other name).

The writer covers what a graph document holds (tables of strings, numbers, booleans, lists and
inline tables), so that `graphfile.parse_document` reads back exactly the document written: a
string is written as a TOML basic string with JSON's escapes, which TOML shares. The file is
written whole or not at all (a temporary file renamed into place).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _table(lines: list[str], header: str, table: dict[str, Any]) -> None:
    """A ``[header]`` table: plain keys first, then its sub-tables as ``[header.key]``."""
    lines.append(header)
    subtables = {k: v for k, v in table.items() if isinstance(v, dict) and v and all(isinstance(k2, str) for k2 in v)}
    for k, v in table.items():
        if k not in subtables:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subtables.items():
        lines.append("")
        _table(lines, f"{header[:-1]}.{_key(k)}]", v)


def toml_table(name: str, table: dict[str, Any]) -> str:
    """One ``[name]`` table (its sub-tables as ``[name.key]``) as TOML, e.g. a decider config."""
    lines: list[str] = []
    _table(lines, f"[{_key(name)}]", table)
    return "\n".join(lines) + "\n"


def to_toml(doc: dict[str, Any]) -> str:
    """``doc`` (``graph``, ``tasks``, ``rules``) as niyantra TOML."""
    lines: list[str] = []
    if "graph" in doc:
        _table(lines, "[graph]", doc["graph"])
    for name in ("rules", "tasks"):
        for item in doc.get(name, ()):
            lines += ["", f"[[{name}]]"] + [f"{_key(k)} = {_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def write_document(doc: dict[str, Any], path: Path) -> None:
    """Write ``doc`` to ``path`` (TOML for ``.toml``, else JSON), replacing it in one rename."""
    data = to_toml(doc).encode() if path.suffix == ".toml" else orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

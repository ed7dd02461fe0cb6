"""Graph files: read TOML, JSON or WfCommons WfFormat (plain or gzipped) into a validated `GraphSpec`.

The format follows the file: ``.toml`` is niyantra's TOML; ``.json`` and ``.json.gz`` are
either a WfFormat instance (it has a ``workflow`` object) or niyantra's format written as JSON.
A file over the size limit is refused before it is parsed (for gzip, the inflated size
counts), and a syntax error names the line and column. Validation is `graphcheck.build_graph`.

A graph that names a ``source`` has its directories (relative ones from the file's folder) walked
for validation, so an input the source tree lacks is reported; `load_graph` with
``hash_source=True`` (submit) also hashes every file and returns the spec with its manifest.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zlib
from pathlib import Path
from typing import Any

import orjson

from orchestrator.errors import GraphFileError, SourceTreeError
from orchestrator.graphs.iocheck import parse_sources
from orchestrator.graphs.problem import Problem
from orchestrator.graphs.shape import find_cycle
from orchestrator.graphs.sourcetree import source_paths, walk_manifest
from orchestrator.graphs.taskfields import parse_duration
from orchestrator.graphs.validation import GraphSpec, Limits, build_graph
from orchestrator.graphs.wfformat import WfOptions, is_wfformat, wf_document, wf_output_sizes
from schemas.codec import manifest_digest

__all__ = ["GraphSpec", "Limits", "WfOptions", "build_graph", "find_cycle", "load_graph", "parse_document"]
__all__ += ["load_output_sizes", "parse_duration", "read_limited"]

_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_limited(path: Path, limit: int) -> bytes:
    """The file's bytes (inflated if gzipped), refusing more than ``limit`` bytes."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise GraphFileError(where, [Problem(where, None, None, _too_big(size, limit))])
        data = path.read_bytes()
    except OSError as e:
        raise GraphFileError(where, [Problem(where, None, None, f"cannot read: {e.strerror or e}")]) from e
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        inflater = zlib.decompressobj(wbits=31)
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise GraphFileError(where, [Problem(where, None, None, f"not valid gzip: {e}")]) from e
    if len(out) > limit:
        raise GraphFileError(where, [Problem(where, None, None, _too_big(len(out), limit, "inflated "))])
    return out


def _too_big(size: int, limit: int, what: str = "") -> str:
    return f"{what}size {size:,} bytes is over the limit of {limit:,} bytes (--max-bytes)"


def _decode_toml(where: str, data: bytes) -> Any:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise GraphFileError(where, [Problem(where, None, None, f"not UTF-8 text: {e}")]) from e
    except tomllib.TOMLDecodeError as e:
        m = _TOML_AT.search(str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        message = _TOML_AT.sub("", str(e)).strip()
        problem = Problem(where, None, None, f"not valid TOML: {message}", line=line, column=col)
        raise GraphFileError(where, [problem]) from e


def _decode_json(where: str, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        problem = Problem(where, None, None, f"not valid JSON: {e.msg}", line=e.lineno, column=e.colno)
        raise GraphFileError(where, [problem]) from e


def parse_document(where: str, data: bytes, wf: WfOptions | None = None) -> dict[str, Any]:
    """The graph document in ``data``: TOML, niyantra JSON, or WfFormat converted."""
    wf = wf or WfOptions()
    name = where.lower()
    looks_json = name.endswith((".json", ".json.gz")) or (
        not name.endswith(".toml") and data.lstrip()[:1] in (b"{", b"[")
    )
    if not looks_json:
        doc = _decode_toml(where, data)
        if not isinstance(doc, dict):
            raise GraphFileError(where, [Problem(where, None, None, "must be a table")])
        return doc
    doc = _decode_json(where, data)
    if is_wfformat(doc):
        converted, problems = wf_document(where, doc, wf)
        if problems:
            raise GraphFileError(where, problems)
        return converted
    if not isinstance(doc, dict):
        raise GraphFileError(where, [Problem(where, None, None, "must be a JSON object with 'graph' and 'tasks'")])
    return doc


def load_graph(
    path: str | Path, limits: Limits | None = None, wf: WfOptions | None = None, *, hash_source: bool = False
) -> GraphSpec:
    """Read, parse and validate a graph file; raise `GraphFileError` listing every problem.

    With ``hash_source`` the source tree's manifest is taken too (``source_tree``, ``source_files``).
    """
    limits = limits or Limits()
    p = Path(path)
    data = read_limited(p, limits.max_bytes)
    doc = parse_document(str(p), data, wf)
    return build_with_source(str(p), doc, p.parent, limits, hash_source=hash_source)


def build_with_source(
    file: str, doc: dict[str, Any], base: Path, limits: Limits | None = None, *, hash_source: bool = False
) -> GraphSpec:
    """`build_graph` with the document's source directories (relative to ``base``) walked, or hashed."""
    graph = doc.get("graph")
    mounts, bad = parse_sources(file, graph.get("source") if isinstance(graph, dict) else None)
    if bad or not mounts:
        spec = build_graph(file, doc, limits)
        return _with_domain(spec, file) if hash_source else spec
    try:
        if hash_source:
            manifest, origins = walk_manifest(mounts, base)
            paths = [f.path for f in manifest.files]
        else:
            paths = source_paths(mounts, base)
    except SourceTreeError as e:
        raise GraphFileError(file, [Problem(file, None, "source", str(e), scope="graph")]) from e
    spec = build_graph(file, doc, limits, source_paths=paths)
    if not hash_source:
        return spec
    tree = manifest_digest(manifest)
    spec = dataclasses.replace(spec, source_tree=tree, source_files=manifest.files, source_origins=origins)
    return _with_domain(spec, file)


def _with_domain(spec: GraphSpec, file: str) -> GraphSpec:
    """A submitted graph's trust domain: its ``cache_domain``, else its file's absolute path, so
    ``niyantra build .`` and ``niyantra build /abs/build`` of one tree share their cache entries."""
    if spec.cache_domain:
        return spec
    return dataclasses.replace(spec, cache_domain=str(Path(file).resolve()))


def load_output_sizes(path: str | Path, limits: Limits | None = None) -> dict[str, tuple[tuple[str, int], ...]]:
    """Each task's output files and their sizes, from a WfFormat file (`wf_output_sizes`); empty
    for a graph file that records no sizes (TOML, niyantra JSON)."""
    limits = limits or Limits()
    p = Path(path)
    data = read_limited(p, limits.max_bytes)
    name = str(p).lower()
    if name.endswith(".toml") or not (name.endswith((".json", ".json.gz")) or data.lstrip()[:1] == b"{"):
        return {}
    doc = _decode_json(str(p), data)
    return wf_output_sizes(doc) if is_wfformat(doc) else {}

"""Import a build folder's Ninja file from disk: the shell around the pure parser and importer.

It reads the manifest and what it includes (paths relative to the build folder, as Ninja takes
them), finds the source folder and the project's name, lists the build folder and walks the
source, and returns the graph document with what it found (`NinjaImport`).

The source folder is, in this order: the one given; CMake's ``CMAKE_HOME_DIRECTORY`` from
``CMakeCache.txt``; the deepest folder holding every input that lies outside the build folder and
no edge builds; none (a build whose sources all sit in the build folder). A ``.ninja_log`` (an
earlier ``ninja`` run) gives each task's estimate: the duration of its output's last build. The build folder is
CMake's ``CMAKE_CACHEFILE_DIR`` when there is one (the spelling CMake wrote into the commands),
else the manifest's folder. The project's name: ``CMAKE_PROJECT_NAME``, else the source folder's
name, else the build folder's, made a valid graph id.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import NinjaFileError
from orchestrator.graphs.iocheck import parse_sources
from orchestrator.graphs.ninja.importer import ImportOptions, build_mounts, graph_document, manifest_paths
from orchestrator.graphs.ninja.manifest import Manifest, Reader, parse_manifest
from orchestrator.graphs.ninja.pathmap import PathMap, climb_of, place
from orchestrator.graphs.sourcetree import source_paths

CMAKE_CACHE = "CMakeCache.txt"
_CACHE_LINE = re.compile(r"^([A-Za-z0-9_.\-]+):[A-Z]+=(.*)$")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class NinjaImport:
    """A build imported: its graph document, the project's name, the folders and their placement."""

    document: dict[str, Any]
    project: str
    paths: PathMap
    manifest_file: str


def cmake_cache(build_dir: Path) -> dict[str, str]:
    """The entries of ``CMakeCache.txt`` in ``build_dir`` ({} if there is none)."""
    try:
        text = (build_dir / CMAKE_CACHE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := _CACHE_LINE.match(line))}


def project_id(name: str) -> str:
    """``name`` as a graph id (letters, digits, ``_`` and ``-``; at most 100 characters)."""
    return _NOT_ID.sub("-", name).strip("-")[:100] or "build"


def _reader(main: str, build_dir: Path) -> Reader:
    """Reads the manifest as the user named it, and what it includes relative to the build folder."""

    def read(path: str) -> str:
        return (Path(main) if path == main else build_dir / path).read_text(encoding="utf-8")

    return read


def _source_from_inputs(manifest: Manifest, build_dir: str) -> str | None:
    """The deepest folder holding every input outside the build folder that no edge builds."""
    outside: set[str] = set()
    for e in manifest.edges:
        if e.generator:
            continue
        for p in (*e.inputs, *e.implicit):
            full = p if p.startswith("/") else posixpath.normpath(posixpath.join(build_dir, p))
            made = manifest.producer.get(p)
            built = made is not None and not manifest.edges[made].marks_a_file
            if not built and not (full + "/").startswith(build_dir.rstrip("/") + "/"):
                outside.add(posixpath.dirname(full))
    if not outside:
        return None
    common = posixpath.commonpath(sorted(outside))
    if common in ("/", ""):
        raise NinjaFileError(
            manifest.edges[0].file, None, "its inputs outside the build folder share no folder but '/': pass --source"
        )
    return common


def ninja_log_durations(text: str) -> dict[str, float]:
    """Seconds each output took in the builds ``.ninja_log`` recorded (v5/v6: start, end in ms, ...,
    output); the last record of an output wins, as in Ninja. Lines that do not parse are skipped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 4 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        out[parts[3]] = max(0, int(parts[1]) - int(parts[0])) / 1000
    return out


def _estimates(folder: Path) -> dict[str, float]:
    try:
        return ninja_log_durations((folder / ".ninja_log").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def _build_files(build_dir: Path) -> list[str]:
    out: list[str] = []
    for root, dirs, files in os.walk(build_dir):
        rel = os.path.relpath(root, build_dir)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out += [prefix + f for f in files]
        out += [prefix + d for d in dirs if os.path.islink(os.path.join(root, d))]
    return out


def import_ninja(
    manifest_file: Path, *, source: Path | None = None, targets: tuple[str, ...] = (), graph_id: str | None = None
) -> NinjaImport:
    """Read ``manifest_file`` (a build.ninja) and everything it needs into a graph document."""
    if not manifest_file.is_file():
        raise NinjaFileError(str(manifest_file), None, "does not exist (run the generator, e.g. cmake -G Ninja, first)")
    folder = manifest_file.resolve().parent
    cache = cmake_cache(folder)
    manifest = parse_manifest(str(manifest_file), _reader(str(manifest_file), folder))
    build_dir = posixpath.normpath(cache.get("CMAKE_CACHEFILE_DIR") or os.path.abspath(folder))
    if source is not None:
        if not source.is_dir():
            raise NinjaFileError(str(manifest_file), None, f"--source {source} is not a folder")
        source_dir: str | None = os.path.abspath(source)
    else:
        source_dir = cache.get("CMAKE_HOME_DIRECTORY") or _source_from_inputs(manifest, build_dir)
    paths = place(build_dir, source_dir, climb_of(manifest_paths(manifest)))
    name = cache.get("CMAKE_PROJECT_NAME") or posixpath.basename(source_dir or build_dir)
    project = project_id(name)
    mounts = build_mounts(manifest, paths, _build_files(folder))
    parsed, _ = parse_sources(str(manifest_file), mounts)
    available = source_paths(parsed, folder)
    title = f"{name}: ninja build of {', '.join(targets) or 'default'}"
    options = ImportOptions(graph_id or project, title, targets, _estimates(folder))
    document = graph_document(manifest, paths, options, mounts, available)
    return NinjaImport(document, project, paths, str(manifest_file))

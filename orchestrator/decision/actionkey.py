"""A task's action key: the named form (field -> SHA-256) of everything its result depends on, and its hash.

The cache (issue 22) reuses an earlier success only when the action key of the ready task equals
the key that success was recorded under. The key is the SHA-256 of the canonical encoding of the
*form*, a small table of named fields, each the SHA-256 of the canonical encoding of one part of
the task's definition or inputs. The form is kept beside the key so that a miss can name the
field that changed since the last hit (`changed_fields`), as Bazel's execution log and Nx's
``--verbose`` hash details do.

What is in the form (`FORM_FIELDS`):

- ``command``, ``preflight``, ``type``: what runs;
- ``inputs``, ``outputs``: the declared patterns (a changed glob is a changed task);
- ``labels``: the platform the task asks for; ``scope``: the paths it may change;
- ``env``: the *names* of the environment variables it receives (their values are the agent's and
  never reach the log; see the README's cache section);
- ``sources``: the source files its ``inputs`` select from the graph's source tree, each as
  (path, digest, mode); a task of a graph with a source tree that declares no inputs depends on
  the whole tree (its manifest digest);
- ``deps``: every dependency's outputs as (path, digest, mode), sorted by path.

What is not: the graph id and title, the task's id and title, estimates, timeouts, attempts and
priority. A new run of the same graph (a new graph id) computes the same keys, and changing how
long a task may take does not invalidate its result. Pure: hashing only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from orchestrator.graphs.globs import PathIndex
from schemas.records import ArtifactRecord, TaskSpec

FORM_VERSION = "1"  # part of every key: a change of what the form holds changes every key
FORM_FIELDS = ("command", "preflight", "type", "inputs", "outputs", "labels", "scope", "env", "sources", "deps")
NO_ENTRY = "no entry"

_encode = msgspec.json.Encoder(order="sorted").encode
Form = dict[str, str]


def _sha(value: Any) -> str:
    return hashlib.sha256(_encode(value)).hexdigest()


def _files(records: Iterable[ArtifactRecord]) -> list[tuple[str, str, int]]:
    return sorted({(r.path, r.digest, r.mode) for r in records})


class SourceIndex:
    """One graph's source files indexed by path once (`PathIndex`), and each of its filesets'
    selection kept once chosen: a Ninja build's tasks all name the same ``@undeclared`` set of
    ~200 headers, chosen once for the graph instead of once per task. One index serves one graph."""

    def __init__(self, files: Iterable[ArtifactRecord], filesets: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.by_path = {f.path: f for f in files}
        self.paths = PathIndex(self.by_path)
        self.filesets = filesets or {}
        self._chosen: dict[str, list[str]] = {}

    def select(self, inputs: Iterable[str]) -> list[ArtifactRecord]:
        chosen: set[str] = set()
        patterns: list[str] = []
        for p in inputs:
            if not p.startswith("@"):
                patterns.append(p)
                continue
            if p not in self._chosen:
                self._chosen[p] = self.paths.select(self.filesets.get(p[1:], ()))
            chosen.update(self._chosen[p])
        chosen.update(self.paths.select(patterns))
        return [self.by_path[path] for path in sorted(chosen)]


def selected_sources(
    inputs: tuple[str, ...],
    files: Iterable[ArtifactRecord],
    filesets: Mapping[str, tuple[str, ...]] | None = None,
    index: SourceIndex | None = None,
) -> list[ArtifactRecord]:
    """The source files the task's ``inputs`` select (``@name`` expanded through ``filesets``), by path
    (``index``: the graph's files and filesets indexed once for all its tasks)."""
    return (index or SourceIndex(files, filesets)).select(inputs)


def static_form(
    task: TaskSpec,
    source_files: Iterable[ArtifactRecord] = (),
    source_tree: str = "",
    filesets: Mapping[str, tuple[str, ...]] | None = None,
    index: SourceIndex | None = None,
) -> Form:
    """The form's fields known at submit: everything but the dependencies' outputs."""
    if task.inputs:
        sources: Any = _files(selected_sources(task.inputs, source_files, filesets, index))
    else:
        sources = ["tree", source_tree]
    return {
        "v": FORM_VERSION,
        "command": _sha(task.command),
        "preflight": _sha(task.preflight),
        "type": _sha(task.type),
        "inputs": _sha(list(task.inputs)),
        "outputs": _sha(list(task.outputs)),
        "labels": _sha(sorted(task.labels.items())),
        "scope": _sha(list(task.scope)),
        "env": _sha(sorted(task.env)),
        "sources": _sha(sources),
    }


def with_deps(form: Mapping[str, str], dep_outputs: Iterable[ArtifactRecord]) -> Form:
    """The whole form: ``form`` (`static_form`) with the dependencies' outputs."""
    return {**form, "deps": _sha(_files(dep_outputs))}


def action_form(
    task: TaskSpec,
    dep_outputs: Iterable[ArtifactRecord] = (),
    source_files: Iterable[ArtifactRecord] = (),
    source_tree: str = "",
    filesets: Mapping[str, tuple[str, ...]] | None = None,
) -> Form:
    """The named form of a task whose dependencies have produced ``dep_outputs``."""
    return with_deps(static_form(task, source_files, source_tree, filesets), dep_outputs)


def action_key(form: Mapping[str, str]) -> str:
    """The action key: SHA-256 (hex) of the canonical encoding of the form."""
    return _sha(dict(form))


def changed_fields(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """The names of the fields whose digests differ between two forms (in `FORM_FIELDS` order,
    then any others by name; a field only one form has counts as changed)."""
    names = [f for f in ("v", *FORM_FIELDS) if f in old or f in new]
    names += sorted((set(old) | set(new)) - set(names))
    return [f for f in names if old.get(f) != new.get(f)]


def miss_reason(last: Mapping[str, str] | None, now: Mapping[str, str]) -> str:
    """Why a key missed, in words: the fields changed since ``last`` (the form of the task's last
    cached result), or `NO_ENTRY` when there is none."""
    if not last:
        return NO_ENTRY
    changed = changed_fields(last, now)
    if not changed:
        return "the entry of the last key is gone (revoked)"
    return "changed since the last hit: " + ", ".join(changed)

"""The Python API: build a task graph in code, validate it like a file, and submit it.

    from orchestrator.writeside.api import Graph

    g = Graph("nightly", title="Nightly build", defaults={"timeout": "10m"})
    deps = g.task("deps", "make deps", estimate="30s", type="deps")
    for shard in range(4):
        g.task(f"test-{shard}", f"make test SHARD={shard}", depends_on=[deps], type="test")
    g.rule("it", when={"type": "deps"}, task={"id": "{task}-it", "command": "make it"})  # follow-up
    print(g.submit("nats://127.0.0.1:4222"))   # validated first; atomic; idempotent

Fields are the graph file's (``estimate``, ``timeout``, ``tier``, ``labels``, ...), checked by
the same validation, so a graph built in code and one written by hand are accepted or refused
alike, with the same messages. `Graph.document` is the graph as a plain dict (JSON-ready).
``source`` and ``filesets`` are the ``[graph]`` fields of a file (a relative source directory is
taken from the current directory); `submit` records the source tree's manifest.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from orchestrator.graphs.validation import GraphSpec, Limits


class Graph:
    """A graph under construction; `build` validates it, `submit` writes it."""

    def __init__(
        self,
        id: str,
        *,
        title: str = "",
        defaults: dict[str, Any] | None = None,
        generation_limit: int | None = None,
        source: str | list[dict[str, Any]] | None = None,
        filesets: dict[str, list[str]] | None = None,
    ) -> None:
        self.id = id
        self.title = title
        self.defaults = dict(defaults or {})
        self.generation_limit = generation_limit
        self.source = source
        self.filesets = dict(filesets or {})
        self._tasks: list[dict[str, Any]] = []
        self._rules: list[dict[str, Any]] = []

    def task(
        self,
        id: str,
        command: str,
        *,
        depends_on: list[str] | tuple[str, ...] = (),
        **fields: Any,
    ) -> str:
        """Add a task; returns its id, to pass in another task's ``depends_on``."""
        self._tasks.append({"id": id, "command": command, "depends_on": list(depends_on), **fields})
        return id

    def rule(self, name: str, *, task: dict[str, Any], **fields: Any) -> str:
        """Add a follow-up rule (``when``, ``on``, ``unless``, ``before`` and the ``task`` template,
        as ``[[rules]]`` in a file: `orchestrator.graphs.rulecheck`); returns its name."""
        self._rules.append({"name": name, **fields, "task": dict(task)})
        return name

    def document(self) -> dict[str, Any]:
        """The graph as the file format's document."""
        graph: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.defaults:
            graph["defaults"] = self.defaults
        if self.generation_limit is not None:
            graph["generation_limit"] = self.generation_limit
        if self.source is not None:
            graph["source"] = self.source
        if self.filesets:
            graph["filesets"] = self.filesets
        doc: dict[str, Any] = {"graph": graph, "tasks": [dict(t) for t in self._tasks]}
        if self._rules:
            doc["rules"] = [dict(r) for r in self._rules]
        return doc

    def build(self, limits: Limits | None = None, *, hash_source: bool = False) -> GraphSpec:
        """Validate; raise `GraphFileError` listing every problem (source ``<python graph ID>``)."""
        from orchestrator.graphs.graphfile import build_with_source

        where = f"<python graph {self.id}>"
        return build_with_source(where, self.document(), Path.cwd(), limits, hash_source=hash_source)

    def save(self, path: str | Path) -> Path:
        """Write the graph as a JSON graph file that `niyantra validate` and `submit` take."""
        self.build()
        p = Path(path)
        p.write_bytes(orjson.dumps(self.document(), option=orjson.OPT_INDENT_2))
        return p

    def submit(self, url: str | None = None, *, submitted_by: str | None = None) -> Any:
        """Validate and submit through the write side; returns `Submitted` (``created`` False if present)."""
        from orchestrator.graphs.submission import graph_events
        from orchestrator.writeside.application import Orchestrator
        from orchestrator.writeside.sources import store_source_sync

        spec = self.build(hash_source=True)
        url = url or os.environ.get("NIYANTRA_NATS_URL", "nats://127.0.0.1:4222")
        events = graph_events(
            spec, datetime.now(UTC), f"submit:{spec.id}:{uuid.uuid4().hex}", submitted_by or os.environ.get("USER", "")
        )
        store_source_sync(url, spec)  # the blobs first: no event ever names a missing one
        app = Orchestrator(env={"NIYANTRA_NATS_URL": url})
        try:
            return app.submit_graph(events)
        finally:
            app.close()

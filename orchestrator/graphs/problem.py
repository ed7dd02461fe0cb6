"""One problem found in a graph file: the file, the task id, the field, and what is wrong."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A located problem. ``scope`` says where the field lives: a task, the graph, its defaults."""

    file: str
    task: str | None
    field: str | None
    message: str
    scope: str = "task"
    line: int | None = None
    column: int | None = None

    def at(self, **changes: Any) -> Problem:
        """A copy with some parts changed."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        parts = [where]
        if self.task is not None:
            parts.append(f"task {self.task!r}")
        elif self.scope == "graph":
            parts.append("[graph]")
        elif self.scope == "graph.defaults":
            parts.append("[graph.defaults]")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        parts.append(self.message)
        return ": ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The problem as a JSON object (``validate --json``)."""
        out: dict[str, Any] = {"file": self.file, "task": self.task, "field": self.field, "message": self.message}
        if self.scope != "task":
            out["scope"] = self.scope
        if self.line is not None:
            out["line"], out["column"] = self.line, self.column
        out["text"] = str(self)
        return out

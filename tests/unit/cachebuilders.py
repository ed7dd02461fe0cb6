"""Events of cached builds for the unit tests: a source tree, tasks with inputs and outputs."""

from __future__ import annotations

import msgspec

from schemas import events as ev
from schemas import records as rec
from tests.unit.builders import T0, at

SRC = (
    rec.ArtifactRecord(path="src/a.c", digest="a" * 64, size=1),
    rec.ArtifactRecord(path="src/b.c", digest="b" * 64, size=1),
)
OUT = {
    "a": (rec.ArtifactRecord(path="a.o", digest="c" * 64, size=2),),
    "b": (rec.ArtifactRecord(path="b.o", digest="d" * 64),),
    "link": (rec.ArtifactRecord(path="app", digest="9" * 64, mode=0o755),),
}


def build(graph_id: str, src=SRC, **kw) -> ev.GraphSubmitted:
    """a.o from src/a.c, b.o from src/b.c, link from both: ``link`` depends on a and b."""
    tasks = (
        rec.TaskSpec(id="a", command="cc a", inputs=("src/a.c",), outputs=("a.o",)),
        rec.TaskSpec(id="b", command="cc b", inputs=("src/b.c",), outputs=("b.o",)),
        rec.TaskSpec(id="link", command="ld", depends_on=("a", "b"), inputs=("a.o", "b.o"), outputs=("app",)),
    )
    tasks = tuple(msgspec.structs.replace(t, **kw.pop(t.id, {})) for t in tasks)
    return ev.GraphSubmitted(
        event_id=f"s:{graph_id}", occurred_at=T0, graph_id=graph_id, tasks=tasks, source="g.toml",
        source_tree="tree", source_files=src, **kw,
    )  # fmt: skip


def done(graph_id: str, task: str, node: str = "n1", outcome: str = "success", outputs=None, attempt: int = 1):
    """A dispatch and the agent's completion with the task's outputs."""
    d = ev.TaskDispatched(
        event_id=f"d:{graph_id}:{task}:{attempt}", occurred_at=at(1), graph_id=graph_id, task_id=task,
        node_id=node, attempt=attempt, command="x",
    )  # fmt: skip
    c = ev.TaskCompleted(
        event_id=f"c:{graph_id}:{task}:{attempt}", occurred_at=at(2), graph_id=graph_id, task_id=task,
        node_id=node, attempt=attempt, outcome=outcome, outputs=OUT.get(task, ()) if outputs is None else outputs,
    )  # fmt: skip
    return [d, c]


def hit(graph_id: str, task: str, key: str, reused: str = "g1", outputs=None, domain: str = "g.toml"):
    """A cache hit of ``task`` reusing graph ``reused``'s attempt 1."""
    return ev.TaskCacheHit(
        event_id=f"hit:{graph_id}:{task}", occurred_at=at(5), graph_id=graph_id, task_id=task, key=key,
        domain=domain, reused_graph=reused, reused_task=task, reused_attempt=1, reason="same key",
        outputs=OUT.get(task, ()) if outputs is None else outputs,
    )  # fmt: skip

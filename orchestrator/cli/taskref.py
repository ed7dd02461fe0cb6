"""What a user means by ``TASK`` or ``GRAPH/TASK`` when ids may hold slashes themselves.

A Bazel label (``//pkg:target``) or a Ninja target (``src/a.o``) is a task id with slashes, so a
slash does not say where a graph id ends. Every reading is tried: the whole text as a task id in
any graph, then each split at a slash as graph and task. The reading that names a task that
exists wins; two that both do are refused, naming both (``--graph`` says which).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Found = Callable[[str | None, str], Iterable[tuple[str, str]]]


def readings(ref: str, graph: str | None) -> list[tuple[str | None, str]]:
    """Every (graph or None for any, task) that ``ref`` may mean; with ``graph``, only that one."""
    if graph is not None:
        return [(graph, ref)]
    out: list[tuple[str | None, str]] = [(None, ref)]
    out += [(ref[:i], ref[i + 1 :]) for i, c in enumerate(ref) if c == "/" and 0 < i < len(ref) - 1]
    return out


def resolve(ref: str, graph: str | None, found: Found) -> tuple[str, str]:
    """The one (graph, task) ``ref`` names, by asking ``found`` which tasks exist for a reading.

    Raises LookupError naming the text when nothing matches, or every match when several do.
    """
    matches = sorted({hit for g, t in readings(ref, graph) for hit in found(g, t)})
    if not matches:
        where = f" in graph {graph!r}" if graph is not None else ""
        raise LookupError(f"no task {ref!r}{where}")
    if len(matches) > 1:
        names = ", ".join(f"{t!r} in graph {g!r}" for g, t in matches)
        raise LookupError(f"{ref!r} could be {names}: name the graph with --graph and give the task id alone")
    return matches[0]


def among(known: Iterable[tuple[str, str]]) -> Found:
    """A `Found` over a known set of (graph, task) pairs."""
    pairs = set(known)
    return lambda g, t: [(pg, pt) for pg, pt in pairs if pt == t and (g is None or pg == g)]

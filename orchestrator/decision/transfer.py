"""Locality in node choice: the seconds a node needs to fetch the inputs of a ready task that it
does not hold yet, at the node's learned transfer rate (the eft policy adds them to a node's
expected finish, `orchestrator.decision.candidates`).

A ready task's inputs from the store are its dependencies' stored outputs (what its agent lays
out before it runs: `TaskDispatched.dep_outputs`), one blob per digest. A node holds a blob when
it ran the task that produced it, or ran (or was sent) a dependent of that task: its agent
fetched the blob then and keeps it in its local content-addressed cache. Both are read from the
readiness view (a task's ``node`` and ``outputs``), so no new view is needed; the blobs of a
cache hit's reused outputs are held by no node. The rate is learned per node from its own
fetches (the bytes and seconds its completions report, decayed together in the node-scores
view), shrunk toward a prior: ``(bytes + prior_rate × prior_s) / (seconds + prior_s)``, where
the prior is every node's fetches pooled the same way (`fleet_rate`: a node new to the
cluster starts from what the others measured), else the configured rate.

Pure: everything comes from the views and the scoring config; a round's answers per dependency
are kept in the dict the caller passes (the round owns it). Rates in words both ways:
`size_words` and `parse_bandwidth` (``100MB/s``, what `niyantra simulate --bandwidth` takes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import NamedTuple

from projections.node_scores.fold import NodeView
from projections.readiness.fold import TaskView

_HOLDING = frozenset(("dispatched", "running", "succeeded"))  # a dependent sent there fetches (or fetched)
_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


class Need(NamedTuple):
    """A ready task's inputs from the store: per distinct blob (by digest) its size and the nodes
    that hold it; ``total`` is their summed size in bytes."""

    blobs: tuple[tuple[int, frozenset[str]], ...]
    total: int


class Fetch(NamedTuple):
    """What a node would fetch for a task: seconds, bytes missing there, the rate and its evidence."""

    seconds: float
    missing: int
    rate: float
    evidence: str


def held_by(dep: TaskView, tasks: Mapping[tuple[str, str], TaskView]) -> frozenset[str]:
    """The nodes holding a finished task's outputs: the one that produced them and every node a
    dependent of it was sent to (its agent fetched them there)."""
    nodes = {dep.node} if dep.node and not dep.cache_hit else set()
    for dependent in dep.dependents:
        t = tasks.get((dep.graph_id, dependent))
        if t is not None and t.node and t.state in _HOLDING:
            nodes.add(t.node)
    return frozenset(nodes)


def task_need(
    task: TaskView,
    tasks: Mapping[tuple[str, str], TaskView],
    held: MutableMapping[tuple[str, str], frozenset[str]] | None = None,
) -> Need | None:
    """The task's inputs from the store, or None when its dependencies stored nothing with a size.

    ``held`` keeps `held_by` per dependency for as long as the views do not change (one round)."""
    sizes: dict[str, int] = {}
    holders: dict[str, frozenset[str]] = {}
    for dep_id in task.depends_on:
        dep = tasks.get((task.graph_id, dep_id))
        if dep is None or not dep.outputs:
            continue
        key = (dep.graph_id, dep.task_id)
        nodes = held.get(key) if held is not None else None
        if nodes is None:
            nodes = held_by(dep, tasks)
            if held is not None:
                held[key] = nodes
        for r in dep.outputs:
            if r.size > 0:
                sizes[r.digest] = r.size
                holders[r.digest] = holders.get(r.digest, frozenset()) | nodes
    if not sizes:
        return None
    return Need(tuple((sizes[d], holders[d]) for d in sorted(sizes)), sum(sizes.values()))


def sent_to(task: TaskView, node_id: str, held: MutableMapping[tuple[str, str], frozenset[str]]) -> None:
    """Note in a round's ``held`` that the task was just sent to ``node_id``: its dependencies'
    outputs will be there, for the tasks the round looks at after it (the views say so only
    from the next round on, when the dispatch is in them)."""
    for dep_id in task.depends_on:
        key = (task.graph_id, dep_id)
        nodes = held.get(key)
        if nodes is not None and node_id not in nodes:
            held[key] = nodes | {node_id}


def missing_bytes(need: Need, node_id: str) -> int:
    """Bytes of the task's inputs the node does not hold."""
    return sum(size for size, nodes in need.blobs if node_id not in nodes)


def transfer_rate(node: NodeView, prior_bps: float, prior_s: float, prior_words: str = "prior") -> tuple[float, str]:
    """The node's transfer rate (bytes per second) from its own decayed fetches, shrunk toward
    ``prior_bps`` by ``prior_s`` seconds of pseudo-evidence, and the evidence in words."""
    got, took = node.fetched_bytes, node.fetch_seconds
    if got.n == 0 or took.s1 <= 0:
        return prior_bps, prior_words
    rate = (got.s1 + prior_bps * prior_s) / (took.s1 + prior_s)
    return rate, f"{got.n} fetches"


def fleet_rate(
    nodes: Mapping[str, NodeView], node_order: Sequence[str], prior_bps: float, prior_s: float
) -> tuple[float, str]:
    """The prior of a node that has not fetched yet: every node's fetches pooled (shrunk toward
    the configured prior like one node's), else the configured prior; summed in node order (the
    same bits whatever the mapping's order)."""
    got = took = 0.0
    count = 0
    for nid in node_order:
        n = nodes[nid]
        if n.fetched_bytes.n and n.fetch_seconds.s1 > 0:
            got, took, count = got + n.fetched_bytes.s1, took + n.fetch_seconds.s1, count + n.fetched_bytes.n
    if not count:
        return prior_bps, "prior"
    return (got + prior_bps * prior_s) / (took + prior_s), f"all nodes' {count} fetches"


def fetch_for(need: Need, node: NodeView, prior: tuple[float, str], prior_s: float) -> Fetch:
    """What the node would fetch for the task, and how long it is expected to take, its rate
    shrunk toward ``prior`` (a rate and its words: `fleet_rate`)."""
    missing = missing_bytes(need, node.node_id)
    rate, evidence = transfer_rate(node, prior[0], prior_s, prior[1])
    return Fetch(missing / rate if missing else 0.0, missing, rate, evidence)


def size_words(n: float) -> str:
    """A byte count in decimal units: ``1.5 MB``, ``812 B``."""
    for scale, unit in _UNITS:
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def fetch_words(fetch: Fetch, need: Need) -> str:
    """The transfer term in a candidate's reason: ``fetch 1.5 MB of 2.0 MB in 0.0s at 100.0 MB/s (prior) + ``."""
    if not fetch.missing:
        return f"holds its inputs ({size_words(need.total)}) + "
    return (
        f"fetch {size_words(fetch.missing)} of {size_words(need.total)} in {fetch.seconds:.1f}s"
        f" at {size_words(fetch.rate)}/s ({fetch.evidence}) + "
    )


_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMGT]?i?B|[kKMGT]?(?:bit|b))?\s*(?:/s|ps)?\s*$")
_SCALE = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def parse_bandwidth(text: str) -> float:
    """``"100MB/s"`` → 1e8 bytes per second. Units: B, kB, MB, GB, TB (powers of 1000), KiB,
    MiB, GiB, TiB (of 1024), kbit … Tbit or kb … Tb (bits); ``/s`` or ``ps`` optional; a bare number is bytes/s."""
    m = _RATE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a bandwidth (a number and a unit, like 100MB/s, 1GiB/s or 10Gbit/s)")
    value, unit = float(m.group(1)), m.group(2) or "B"
    if unit.endswith(("bit", "b")):
        rate = value * _SCALE[unit.removesuffix("bit").removesuffix("b")] / 8
    elif "i" in unit:
        rate = value * 1024.0 ** ("KMGT".index(unit[0].upper()) + 1)
    else:
        rate = value * _SCALE[unit[:-1]]
    if not rate > 0:
        raise ValueError(f"{text!r}: a bandwidth must be greater than 0")
    return rate

"""Property: validation finds exactly the cycles that exist, in random graphs with and without them.

The reference is independent of the implementation: transitive reachability by repeated
relaxation; two tasks share a cycle iff each reaches the other.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import GraphFileError
from orchestrator.graphs.shape import find_cycles, strongly_connected, topological_order
from orchestrator.graphs.validation import build_graph


def reach(deps: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    r = {t: set(ds) for t, ds in deps.items()}
    changed = True
    while changed:
        changed = False
        for t in r:
            more = set().union(*(r[d] for d in r[t])) - r[t] if r[t] else set()
            if more:
                r[t] |= more
                changed = True
    return r


def reference_components(deps: dict[str, tuple[str, ...]]) -> set[frozenset[str]]:
    r = reach(deps)
    return {frozenset(u for u in deps if u in r[t] and t in r[u]) for t in deps if t in r[t]}


def as_document(deps: dict[str, tuple[str, ...]]) -> dict:
    tasks = [{"id": t, "command": "true", "depends_on": list(d)} for t, d in deps.items()]
    return {"graph": {"id": "g"}, "tasks": tasks}


@st.composite
def graphs(draw, acyclic: bool = False) -> dict[str, tuple[str, ...]]:
    n = draw(st.integers(min_value=1, max_value=14))
    ids = [f"T{i}" for i in range(n)]
    deps: dict[str, tuple[str, ...]] = {}
    for i, t in enumerate(ids):
        pool = ids[:i] if acyclic else ids
        chosen = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True)) if pool else []
        deps[t] = tuple(chosen)
    return deps


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_reported_cycles_are_exactly_the_cyclic_components(deps):
    expected = reference_components(deps)
    assert {frozenset(c) for c in strongly_connected(deps)} == expected
    cycles = find_cycles(deps)
    assert len(cycles) == len(expected)
    for path in cycles:
        assert path[0] == path[-1]
        assert any(frozenset(path) <= c for c in expected)
        for a, b in zip(path, path[1:], strict=False):
            assert b in deps[a], f"{a} -> {b} is not an edge of {path}"
    assert (topological_order(deps) is None) == bool(expected)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_validation_reports_a_cycle_iff_one_exists(deps):
    d = as_document(deps)
    expected = reference_components(deps)
    try:
        build_graph("f.toml", d)
    except GraphFileError as e:
        texts = [str(p) for p in e.problems]
    else:
        texts = []
    cyc = [t for t in texts if "forms a cycle" in t or "names the task itself" in t]
    self_loops = {t for t, ds in deps.items() if t in ds}
    multi = [c for c in expected if len(c) > 1]
    assert len([t for t in cyc if "forms a cycle" in t]) == len(multi)
    assert len([t for t in cyc if "names the task itself" in t]) == len(self_loops)
    assert bool(texts) == bool(expected)


@settings(max_examples=200, deadline=None)
@given(graphs(acyclic=True))
def test_acyclic_graphs_validate_and_order_dependencies_first(deps):
    d = as_document(deps)
    assert len(build_graph("f.toml", d).tasks) == len(deps)
    order = topological_order(deps)
    assert order is not None
    pos = {t: i for i, t in enumerate(order)}
    assert all(pos[d] < pos[t] for t, ds in deps.items() for d in ds)


@pytest.mark.parametrize("n", [100_000])
def test_a_long_chain_does_not_hit_the_recursion_limit(n):
    deps = {f"T{i}": ((f"T{i - 1}",) if i else ()) for i in range(n)}
    assert find_cycles(deps) == []
    deps["T0"] = (f"T{n - 1}",)
    (cycle,) = find_cycles(deps)
    assert len(cycle) == n + 1

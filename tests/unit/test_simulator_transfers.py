"""`simulate --bandwidth`: outputs with sizes, transfers that cost time, a rate the decider learns."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.scoring import ScoringConfig
from orchestrator.decision.transfer import parse_bandwidth
from orchestrator.graphs.validation import GraphSpec
from orchestrator.graphs.wfformat import wf_output_sizes
from orchestrator.replay.simulator import Network, output_records, simulate
from schemas.records import TaskSpec
from tests.unit.builders import dispatched

WORKLOADS = Path(__file__).resolve().parents[2] / "examples" / "workloads" / "wfcommons"
MB = 1_000_000


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("100MB/s", 100e6),
        ("100 MB/s", 100e6),
        ("1.5GB/s", 1.5e9),
        ("1GiB/s", 1024.0**3),
        ("512KiB", 512 * 1024.0),
        ("10Gbit/s", 10e9 / 8),
        ("800Mbps", 100e6),
        ("250kB/s", 250e3),
        ("1e6", 1e6),
        ("42B/s", 42.0),
    ],
)
def test_parse_bandwidth(text, bps):
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("fast", "is not a bandwidth"),
        ("", "is not a bandwidth"),
        ("100XB/s", "is not a bandwidth"),
        ("-5MB/s", "is not a bandwidth"),
        ("MB/s", "is not a bandwidth"),
        ("0MB/s", "must be greater than 0"),
    ],
)
def test_bad_bandwidth_is_refused_with_the_reason(text, words):
    with pytest.raises(ValueError, match=words):
        parse_bandwidth(text)


def fork(big: int) -> tuple[GraphSpec, Network]:
    """a (10 s) stores ``big`` bytes that b and c (10 s each) both need."""
    tasks = (
        TaskSpec(id="a", command="x", estimate_s=10.0),
        TaskSpec(id="b", command="x", estimate_s=10.0, depends_on=("a",)),
        TaskSpec(id="c", command="x", estimate_s=10.0, depends_on=("a",)),
    )
    return GraphSpec(id="f", title="", tasks=tasks), Network(1 * MB, output_records({"a": (("a.out", big),)}))


@pytest.mark.parametrize(
    ("prior_bps", "makespan", "moved"),
    [
        (1 * MB, 30.0, 0),  # the decider expects 100 s of fetching: c waits for a's node
        (100 * MB, 120.0, 100 * MB),  # it expects 1 s: c goes to the other node and pays 100 s
    ],
)
def test_a_task_on_a_node_that_lacks_its_input_pays_size_over_bandwidth(prior_bps, makespan, moved):
    spec, net = fork(100 * MB)
    cfg = DeciderConfig(scoring=ScoringConfig(transfer_prior_bps=prior_bps))
    r = simulate(spec, [1.0, 1.0], cfg, network=net)
    assert (r.makespan_s, r.transferred_bytes, r.transfer_s) == (makespan, moved, moved / MB)


def test_without_a_network_outputs_cost_nothing():
    spec, _ = fork(100 * MB)
    assert simulate(spec, [1.0, 1.0]).makespan_s == 20.0


def test_the_decider_learns_the_rate_from_the_fetches_it_reports():
    # first wave of fork(): c pays 100 s at 1 MB/s; a second fork after it is judged by that rate
    tasks = [TaskSpec(id="a", command="x", estimate_s=10.0)]
    tasks += [TaskSpec(id=k, command="x", estimate_s=10.0, depends_on=("a",)) for k in ("b", "c")]
    tasks += [TaskSpec(id="d", command="x", estimate_s=1.0, depends_on=("b", "c"))]
    tasks += [TaskSpec(id=k, command="x", estimate_s=10.0, depends_on=("d",)) for k in ("e", "f")]
    sizes = {"a": (("a.out", 100 * MB),), "d": (("d.out", 100 * MB),)}
    spec = GraphSpec(id="g", title="", tasks=tuple(tasks))
    net = Network(1 * MB, output_records(sizes))
    assignments: dict[str, str] = {}
    simulate(spec, [1.0, 1.0], network=net, assignments=assignments)
    assert assignments["b"] != assignments["c"]  # the prior (100 MB/s) made the fetch look cheap
    assert assignments["e"] == assignments["f"] == assignments["d"]  # learned: 1 MB/s, so stay


def test_wf_output_sizes_reads_1_6_and_1_4_files():
    doc16 = {
        "workflow": {
            "specification": {
                "tasks": [{"id": "t1", "outputFiles": ["x", "nosize"]}, {"id": "t2", "outputFiles": []}],
                "files": [{"id": "x", "sizeInBytes": 7}, {"id": "nosize"}],
            }
        }
    }
    doc14 = {"workflow": {"tasks": [{"name": "t1", "files": [{"name": "y", "size": 3, "link": "output"}]}]}}
    assert wf_output_sizes(doc16) == {"t1": (("x", 7),), "t2": ()}
    assert wf_output_sizes(doc14) == {"t1": (("y", 3),)}
    assert wf_output_sizes({"graph": {}}) == {}


def run(*args: str):
    return CliRunner().invoke(app, ["simulate", str(WORKLOADS / "blast-n200-s1.json.gz"), "--json", *args])


def test_cli_simulate_with_a_bandwidth_moves_the_files_and_states_the_rate():
    free = json.loads(run("--speeds", "2,1,1").stdout)
    slow = run("--speeds", "2,1,1", "--bandwidth", "100kB/s")
    assert slow.exit_code == 0, slow.output
    out = json.loads(slow.stdout)
    assert out["bandwidth_bps"] == 100e3 and out["transferred_bytes"] > 0
    assert out["transfer_s"] == pytest.approx(out["transferred_bytes"] / 100e3, rel=1e-6)
    assert free["bandwidth_bps"] is None and free["transferred_bytes"] == 0
    assert out["makespan_s"] > free["makespan_s"]


@pytest.mark.parametrize("bad", ["fast", "0", "10 furlongs/s"])
def test_cli_simulate_refuses_a_bad_bandwidth(bad):
    r = run("--speeds", "2,1,1", "--bandwidth", bad)
    assert r.exit_code == 2
    assert "--bandwidth" in r.output and repr(bad) in r.output


def test_edge_links_fetch_every_dependency_at_once_node_links_one_after_another():
    # j needs 100 MB from a and 50 MB from b; a, b ran on n1 and n2 (both 10 s): j pays the sum of
    # what its node lacks on one link, the largest dependency's share on HEFT's per-edge links
    tasks = (
        TaskSpec(id="a", command="x", estimate_s=10.0),
        TaskSpec(id="b", command="x", estimate_s=10.0),
        TaskSpec(id="j", command="x", estimate_s=10.0, depends_on=("a", "b")),
    )
    spec = GraphSpec(id="j", title="", tasks=tasks)
    sizes = {"a": (("a.out", 100 * MB),), "b": (("b1", 30 * MB), ("b2", 20 * MB))}
    cfg = DeciderConfig(scoring=ScoringConfig(transfer_prior_bps=1 * MB))
    node = simulate(spec, [1.0, 1.0], cfg, network=Network(1 * MB, output_records(sizes)))
    edge = simulate(spec, [1.0, 1.0], cfg, network=Network(1 * MB, output_records(sizes), links="edge"))
    assert (node.makespan_s, node.transfer_s) == (70.0, 50.0)  # j on a's node: b's 50 MB come in
    assert (edge.makespan_s, edge.transfer_s) == (70.0, 50.0)  # (one dependency missing: the same)


@pytest.mark.parametrize(("links", "seconds"), [("node", 90.0), ("edge", 50.0)])
def test_a_node_lacking_two_dependencies_outputs_pays_by_its_links(links, seconds):
    sizes = {"a": (("a.out", 40 * MB),), "b": (("b1", 30 * MB), ("b2", 20 * MB))}
    net = Network(1 * MB, output_records(sizes), links=links)
    net.produced("a", "n1")
    net.produced("b", "n2")
    records = output_records(sizes)
    d = dispatched("g", "j", "n3")
    d = msgspec.structs.replace(d, dep_outputs=records["a"] + records["b"])
    assert net.fetch(d) == (90 * MB, seconds)
    assert net.fetch(d) == (0, 0.0)  # n3 holds them now


def test_links_must_be_node_or_edge():
    with pytest.raises(ValueError, match="links must be 'node' or 'edge'"):
        Network(1.0, {}, links="star")

"""Hostile input against a real running system (`up --auth`, every process): bad submissions
through `niyantra submit` are refused with a reason and write nothing; malformed events
published straight onto the log (onto dispatch, cancel, drain, node, graph and autonomy
subjects, one of ~1 MB) are recorded and skipped by every projector (dead letters), the archive
(``_malformed`` rows) and the agent (its queue drains), and every process keeps running: a
graph submitted afterwards completes. ``FUZZ_SERVER_CASES`` raises the counts (scripts/fuzz)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.runtime.auth import ADMIN, inbox_prefix, read_credentials
from projections.archive.query import run_query
from projections.fold import dead_key
from schemas import subjects as S
from tests.chaos.plan import ChaosPlan
from tests.chaos.scenario import Chaos
from tests.chaos.test_fuzz_input import LIMITS, bad_submissions, malformed
from tests.conftest import assert_eventually

CASES = int(os.environ.get("FUZZ_SERVER_CASES", "150"))
pytestmark = pytest.mark.timeout(240 + CASES * 0.3)
TARGETS = [
    S.subject(S.task_aggregate("fz", "t1"), "TaskDispatched", "node-1"),  # the agent's own queue
    S.subject(S.task_aggregate("fz", "t1"), "TaskCancelled"),  # the agent's cancel follower
    S.subject(S.graph_aggregate("fz"), "GraphCancelled"),
    S.subject(S.graph_aggregate("fz"), "GraphSubmitted"),
    S.drain_subject("node-1"),
    S.subject(S.node_aggregate("node-2"), "NodeObserved"),
    S.subject("system.autonomy", "AutonomyChanged"),
]
ONE_SHOT = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


async def admin(url: str, password: str) -> nats.NATS:
    return await nats.connect(servers=url.split(","), user=ADMIN, password=password, inbox_prefix=inbox_prefix(ADMIN))


async def graph_events_count(url: str, password: str) -> int:
    nc = await admin(url, password)
    try:
        info = await nc.jetstream().stream_info(S.STREAM, subjects_filter=f"{S.ROOT}.graph.>")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


async def publish_all(url: str, password: str, payloads: list[tuple[str, bytes]]) -> list[int]:
    nc = await admin(url, password)
    try:
        js = nc.jetstream()
        return [(await js.publish(subject, data, stream=S.STREAM)).seq for subject, data in payloads]
    finally:
        await nc.close()


async def dead_letters(url: str, password: str, seqs: list[int]) -> dict[str, int]:
    """How many of ``seqs`` each view bucket holds a dead letter for."""
    nc = await admin(url, password)
    out = {}
    try:
        js = nc.jetstream()
        for bucket in S.VIEW_BUCKETS:
            kv = await js.key_value(bucket)
            found = 0
            for seq in seqs:
                try:
                    await kv.get(dead_key(seq))
                    found += 1
                except nats.js.errors.KeyNotFoundError:
                    pass
            out[bucket] = found
    finally:
        await nc.close()
    return out


async def agent_queue(url: str, password: str) -> tuple[int, int]:
    nc = await admin(url, password)
    try:
        info = await nc.jetstream().consumer_info(S.STREAM, S.agent_consumer("node-1"))
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


def submit(url: str, path: Path, *extra: str):
    return CliRunner().invoke(app, ["submit", str(path), "--nats-url", url, *extra])


def test_hostile_submissions_and_events_against_every_process(tmp_path, monkeypatch):
    chaos = Chaos(ChaosPlan(agents=2, slots=2), tmp_path / "inst")
    try:
        m = chaos.start()
        password = read_credentials(tmp_path / "inst" / "run")[ADMIN]
        monkeypatch.setenv("NIYANTRA_USER", ADMIN)
        monkeypatch.setenv("NIYANTRA_PASSWORD", password)
        good = tmp_path / "good.toml"
        good.write_text('[graph]\nid = "fz-good"\n[[tasks]]\nid = "a"\ncommand = "true"\n')
        assert submit(m.url, good).exit_code == 0
        before = asyncio.run(graph_events_count(m.url, password))

        refusals: list[str] = []

        @settings(ONE_SHOT, max_examples=CASES)
        @given(bad_submissions)
        def submit_bad(data):
            path = tmp_path / "bad.json"
            path.write_bytes(data)
            result = submit(m.url, path, "--max-tasks", str(LIMITS.max_tasks), "--max-bytes", str(LIMITS.max_bytes))
            assert result.exit_code != 0 and str(path) in result.output, result.output
            refusals.append(result.output)

        submit_bad()
        changed = tmp_path / "changed.toml"  # the same id with other content: refused by the write side
        changed.write_text('[graph]\nid = "fz-good"\n[[tasks]]\nid = "b"\ncommand = "true"\n')
        huge = tmp_path / "huge.toml"
        huge.write_text('[graph]\nid = "fz-huge"\n' + '[[tasks]]\nid = "x"\ncommand = "true"\n' * 2000)
        for path, extra in ((changed, ()), (huge, ("--max-bytes", "10000"))):
            result = submit(m.url, path, *extra)
            assert result.exit_code != 0 and result.output.strip(), result.output
            refusals.append(result.output)
        assert len(refusals) >= CASES + 2
        assert asyncio.run(graph_events_count(m.url, password)) == before  # nothing written

        payloads: list[tuple[str, bytes]] = [(TARGETS[0], b"\x00" * 1_000_000)]

        @settings(ONE_SHOT, max_examples=CASES * 2)
        @given(malformed(), st.sampled_from(TARGETS))
        def collect(data, subject):
            payloads.append((subject, data))

        collect()
        seqs = asyncio.run(publish_all(m.url, password, payloads))
        dispatches = sum(1 for s, _ in payloads if s == TARGETS[0])

        after = tmp_path / "after.toml"
        after.write_text(
            '[graph]\nid = "fz-after"\n'
            + "".join(
                f'[[tasks]]\nid = "t{i}"\ncommand = "true"\n' + (f'depends_on = ["t{i - 1}"]\n' if i else "")
                for i in range(8)
            )
        )
        assert submit(m.url, after).exit_code == 0

        async def all_recorded() -> bool:
            return set((await dead_letters(m.url, password, seqs)).values()) == {len(seqs)}

        async def drained() -> bool:
            return await agent_queue(m.url, password) == (0, 0)

        wait(all_recorded, "every projector recorded every malformed event")
        wait(drained, "the agent's queue drained")
        archive = tmp_path / "inst" / "archive"
        wait(lambda: _malformed_rows(archive) >= len(seqs), "malformed rows archived")

        async def completed() -> bool:
            return await _succeeded(chaos) == 9

        wait(completed, "a graph submitted after the garbage completes")
        log = (tmp_path / "inst" / "logs" / "agent-node-1.log").read_text(errors="replace")
        assert log.count("skipped malformed event") >= dispatches
        assert not [n for n, ok in chaos.alive().items() if not ok]
    finally:
        chaos.finish()


def wait(fn, message: str, timeout: float = 60) -> None:
    asyncio.run(assert_eventually(fn, timeout=timeout, interval=0.5, message=message))


def _malformed_rows(archive: Path) -> int:
    if not any(archive.glob("day=*/*.parquet")):
        return 0
    _, rows = run_query(archive, "SELECT count(*) FROM events WHERE type = '_malformed'")
    return int(rows[0][0])  # type: ignore[arg-type]


async def _succeeded(chaos: Chaos) -> int:
    from tests.chaos.scenario import _states

    n = 0
    for graph in ("fz-good", "fz-after"):
        n += sum(1 for s in (await _states(chaos, graph)).values() if s == "succeeded")
    return n

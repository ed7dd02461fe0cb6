"""Generated work on a real server with two deciders: a follow-up rule's tasks are generated and
run exactly once each, the generation limit stops the rule with one event, a backlog graph is
taken once when nothing else is ready; verify and replay --check hold over the whole log."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections import Counter

import nats
import pytest

from orchestrator.cli.replay import read_messages
from orchestrator.graphs.graphfile import build_graph
from orchestrator.replay.check import check
from orchestrator.replay.verify import verify
from orchestrator.writeside.eventlog import EventLog
from schemas import codec
from schemas import events as ev
from tests.conftest import assert_eventually
from tests.integration.harness import submit, system
from tests.integration.test_pipeline import _all_done

TRIGGERS = 12
LIMIT = 8


def ruled_graph(ran: str) -> dict:
    tasks = [{"id": "base", "command": f"echo base >> {ran}", "type": "build"}]
    tasks += [
        {"id": f"types-{i}", "command": f"echo types-{i} >> {ran}", "type": "schema", "depends_on": ["base"]}
        for i in range(TRIGGERS)
    ]
    rule = {
        "name": "it",
        "when": {"type": "schema"},
        "unless": {"type": "integration", "depends_on": "{task}"},
        "task": {"id": "{task}-it", "command": f"echo {{task}}-it >> {ran}", "type": "integration"},
    }
    return {"graph": {"id": "g", "generation_limit": LIMIT}, "tasks": tasks, "rules": [rule]}


async def _events(url: str, subject: str) -> list[tuple[int, ev.AnyEvent]]:
    nc = await nats.connect(url)
    try:
        return await EventLog(nc).read_events(subject)
    finally:
        await nc.close()


@pytest.mark.timeout(120)
async def test_two_deciders_generate_run_and_take_the_backlog_once(nats_server, tmp_path):
    ran = tmp_path / "ran.txt"
    spec = build_graph("g.toml", ruled_graph(str(ran)))
    later = build_graph("later.toml", {"graph": {"id": "later"}, "tasks": [{"id": "x", "command": f"echo x >> {ran}"}]})
    async with system(nats_server.url, tmp_path / "work", agents=2, slots=4, deciders=2):
        await submit(nats_server.url, spec)
        await submit(nats_server.url, dataclasses.replace(later, backlog_priority=5))  # waits: g has work
        await assert_eventually(lambda: _all_done(nats_server.url, "g"), timeout=90, message="graph g done")
        await assert_eventually(lambda: _all_done(nats_server.url, "later"), timeout=30, message="backlog graph done")
    generated = [e for _, e in await _events(nats_server.url, "ev.graph.g.TasksGenerated")]
    ids = [x.spec.id for e in generated for x in e.generated]
    assert len(ids) == len(set(ids)) == LIMIT  # each generated once, up to the limit
    assert all(x.rule == "it" and x.reason.startswith("rule it:") for e in generated for x in e.generated)  # type: ignore[union-attr]
    assert len(await _events(nats_server.url, "ev.graph.g.GenerationLimitReached")) == 1
    runs = Counter(ran.read_text().split())
    assert runs == Counter({"base": 1, "x": 1, **{f"types-{i}": 1 for i in range(TRIGGERS)}, **dict.fromkeys(ids, 1)})
    [(taken_seq, taken)] = await _events(nats_server.url, "ev.backlog.>")
    assert isinstance(taken, ev.BacklogItemTaken) and taken.graph_id == "later"
    messages = await read_messages(nats_server.url)
    done_g = max(m.seq for m in messages if m.subject.startswith("ev.task.g.") and ".TaskCompleted." in m.subject)
    assert taken_seq > done_g  # taken only once nothing else was ready or running
    report = check(messages)
    assert report["mismatches"] == [] and report["generations"] == len(generated) + 2  # + the limit, the backlog
    decoded = [(m.seq, codec.decode(m.data)) for m in messages if m.subject.startswith("ev.")]
    assert verify(decoded)["violations"] == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.timeout(120)
async def test_backlog_cli_adds_validates_and_lists(nats_server, tmp_path):
    url = ["--nats-url", nats_server.url]
    good = tmp_path / "later.toml"
    good.write_text('[graph]\nid = "later"\n[[tasks]]\nid = "x"\ncommand = "true"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text() + '[[rules]]\nname = "r"\non = ["sometimes"]\n[rules.task]\ncommand = "x"\n')
    refused = await asyncio.to_thread(_cli, "backlog", "add", str(bad), *url)
    assert refused.returncode == 2 and "bad.toml: field 'rules[0].on': unknown outcome 'sometimes'" in refused.stderr
    async with system(nats_server.url, tmp_path / "work", agents=1, deciders=1):
        added = await asyncio.to_thread(_cli, "backlog", "add", str(good), "--priority", "2", *url)
        assert added.returncode == 0 and "added with priority 2" in added.stdout, added.stderr
        await assert_eventually(lambda: _all_done(nats_server.url, "later"), timeout=30, message="backlog graph ran")
    listed = await asyncio.to_thread(_cli, "backlog", "list", "--json", *url)
    assert json.loads(listed.stdout) == [
        {"graph": "later", "priority": 2, "tasks": 1, "state": "taken", "done": True, "title": ""}
    ]

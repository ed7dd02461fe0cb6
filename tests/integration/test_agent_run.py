"""The agent runs real subprocesses against a real nats-server: timeouts, secrets, scope, logs,
quality, preflight. Dispatches are appended by hand (no decider), so each test controls its input.
"""

from __future__ import annotations

import asyncio

from node_agent.logstore import LogStore
from orchestrator.errors import EventLogUnavailable
from orchestrator.writeside.eventlog import EventLog
from schemas import events as ev
from tests.conftest import assert_eventually
from tests.integration.agent_support import agent_running, dispatch, gone, niyantra, task_events, wait_event

SECRET = "tok-9f8e7d6c5b4a"


async def test_a_timeout_kills_the_whole_group_grandchildren_too(nc, nats_server, tmp_path):
    log = EventLog(nc)
    # The grandchild ignores TERM and keeps spawning sleeps; only KILL of the group stops it.
    command = (
        "bash -c 'trap \"\" TERM; echo $$ > grandchild.pid; while true; do sleep 0.05; done' & "
        "while [ ! -s grandchild.pid ]; do sleep 0.01; done; echo started; wait"
    )
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "slow", "n1", command, timeout_s=1.0)
        done = await wait_event(log, "g", "slow", ev.TaskCompleted)
    assert done.outcome == "failure" and done.retryable
    assert done.error == "timed out after 1.0s"
    pid = int((tmp_path / "n1" / "g" / "slow" / "grandchild.pid").read_text())
    await assert_eventually(lambda: gone(pid), timeout=5, message=f"grandchild {pid} killed")
    assert "started" in done.output_tail


async def test_a_background_grandchild_never_outlives_a_task_that_succeeded(nc, nats_server, tmp_path):
    log = EventLog(nc)
    command = "(trap '' TERM; sleep 300) & echo $! > bg.pid; echo done"
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "bg", "n1", command)
        done = await wait_event(log, "g", "bg", ev.TaskCompleted)
    assert (done.outcome, done.exit_code) == ("success", 0)
    pid = int((tmp_path / "n1" / "g" / "bg" / "bg.pid").read_text())
    await assert_eventually(lambda: gone(pid), timeout=5, message=f"background child {pid} killed")


async def test_a_secret_never_reaches_the_log_the_events_or_the_archive(nc, nats_server, tmp_path):
    from projections.archive.projector import archived_through, run_archiver
    from projections.archive.query import run_query

    log = EventLog(nc)
    agent_env = {"PATH": "/usr/bin:/bin", "DEPLOY_TOKEN": SECRET, "OTHER_PASSWORD": "pw-not-passed-1234"}
    command = (
        'echo "token is $DEPLOY_TOKEN"; echo "$DEPLOY_TOKEN" >&2; '
        'echo "other: ${OTHER_PASSWORD:-unset}"; printf "%s" "$DEPLOY_TOKEN" > "leak-$DEPLOY_TOKEN"; '
        'echo "$DEPLOY_TOKEN" | cut -c1-6; exit 3'
    )
    async with agent_running(nats_server.url, tmp_path, agent_env=agent_env):
        await dispatch(log, "g", "s", "n1", command, env=("DEPLOY_TOKEN",), scope=("allowed/**",))
        done = await wait_event(log, "g", "s", ev.TaskCompleted)
    assert done.outcome == "failure"
    assert done.scope_violations == ("leak-***",)  # the file name carried the secret too
    stored = await LogStore(nc).get("g", "s", 1)
    text = stored.data.decode()
    assert "token is ***" in text and "other: unset" in text and "tok-9f" in text  # a prefix alone is no secret
    assert SECRET not in text
    assert done.log_subject == stored.subject == "log.g.s.1.run"
    raw = b"".join(m.data for m in await log.read("ev.>"))
    assert b"token is ***" in raw and SECRET.encode() not in raw
    archive = tmp_path / "archive"
    last = await log.last_seq()
    stop = asyncio.Event()
    archiver = asyncio.create_task(run_archiver(nats_server.url, archive, stop))
    try:
        await assert_eventually(lambda: archived_through(archive) >= last, timeout=30, message="archived")
    finally:
        stop.set()
        await archiver
    _, rows = run_query(archive, "SELECT * FROM events")
    assert "token is ***" in repr(rows) and SECRET not in repr(rows)
    shown = niyantra("logs", "s", url=nats_server.url)
    assert shown.returncode == 0, shown.stderr
    assert "token is ***" in shown.stdout and SECRET not in shown.stdout


async def test_an_out_of_scope_write_fails_the_task_and_names_the_path(nc, nats_server, tmp_path):
    log = EventLog(nc)
    workspace = tmp_path / "n1" / "g" / "w"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "keep.c").write_text("int x;")
    (workspace / "old.txt").write_text("old")
    inside = "mkdir -p out/deep && echo built > out/deep/app.o && touch src/keep.c"
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "w", "n1", inside, scope=("out/**",))
        ok = await wait_event(log, "g", "w", ev.TaskCompleted, attempt=1)
        await dispatch(
            log, "g", "w", "n1", "echo x > stray.txt; rm old.txt; echo y >> src/keep.c", scope=("out/**",), attempt=2
        )
        bad = await wait_event(log, "g", "w", ev.TaskCompleted, attempt=2)
    assert (ok.outcome, ok.scope_violations) == ("success", ())  # touching without changing is no change
    assert bad.outcome == "failure" and bad.exit_code == 0 and not bad.retryable
    assert bad.scope_violations == ("old.txt", "src/keep.c", "stray.txt")
    assert (
        "old.txt (deleted)" in bad.error and "src/keep.c (changed)" in bad.error and "stray.txt (created)" in bad.error
    )


async def test_results_carry_attempt_durations_quality_and_the_log_is_retrievable(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "q", "n1", 'echo first; echo 0.75 > "$NIYANTRA_QUALITY_FILE"', expected_duration_s=9.0)
        first = await wait_event(log, "g", "q", ev.TaskCompleted, attempt=1)
        command = 'echo "second $NIYANTRA_ATTEMPT on $NIYANTRA_NODE_ID"; echo lots > "$NIYANTRA_QUALITY_FILE"; exit 4'
        await dispatch(log, "g", "q", "n1", command, attempt=2)
        second = await wait_event(log, "g", "q", ev.TaskCompleted, attempt=2)
        await dispatch(log, "g", "q", "n1", "true", attempt=3)  # prints nothing: no log is stored
        silent = await wait_event(log, "g", "q", ev.TaskCompleted, attempt=3)
    assert (silent.outcome, silent.log_subject) == ("success", "")
    assert await LogStore(nc).latest_attempt("g", "q") == 2
    assert (first.outcome, first.quality, first.expected_duration_s, first.attempt) == ("success", 0.75, 9.0, 1)
    assert first.duration_s > 0
    assert (second.outcome, second.exit_code, second.quality, second.error) == ("failure", 4, None, "exit code 4")
    latest = niyantra("logs", "g/q", url=nats_server.url)
    assert latest.stdout.startswith("second 2 on n1") and "quality file ignored" in latest.stdout
    one = niyantra("logs", "q", "--graph", "g", "--attempt", "1", url=nats_server.url)
    assert one.stdout == "first\n", one.stderr
    missing = niyantra("logs", "g/q", "--attempt", "3", url=nats_server.url)
    assert missing.returncode == 2 and "no stored output for task g/q, attempt 3" in missing.stderr
    assert "printed nothing" in missing.stderr


async def test_a_preflight_runs_as_its_own_run_with_its_own_result(nc, nats_server, tmp_path):
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path):
        await dispatch(log, "g", "p", "n1", "echo would deploy; exit 0", phase="preflight")
        pre = await wait_event(log, "g", "p", ev.TaskCompleted, phase="preflight")
        await dispatch(log, "g", "p", "n1", "echo deploying")
        run = await wait_event(log, "g", "p", ev.TaskCompleted, phase="run")
    assert (pre.outcome, pre.attempt, pre.log_subject) == ("success", 1, "log.g.p.1.preflight")
    kinds = [(type(e).__name__, e.phase if hasattr(e, "phase") else "") for e in await task_events(log, "g", "p")]
    assert kinds == [
        ("TaskDispatched", "preflight"),
        ("TaskCompleted", "preflight"),
        ("TaskDispatched", "run"),
        ("TaskStarted", ""),
        ("TaskCompleted", "run"),
    ]
    assert run.outcome == "success"
    shown = niyantra("logs", "g/p", "--phase", "preflight", url=nats_server.url)
    assert shown.stdout == "would deploy\n"


async def test_a_start_not_recorded_is_asked_for_again_at_once_not_after_the_ack_wait(
    nc, nats_server, tmp_path, monkeypatch
):
    """The first start append fails as it does while the stream elects a new leader; nothing ran,
    so the agent has the dispatch redelivered in a second (the ack wait here is 10 minutes)."""
    failed: list[str] = []
    real_append = EventLog.append_event

    async def append_failing_the_first_start(self, event, **kw):
        if isinstance(event, ev.TaskStarted) and not failed:
            failed.append(event.event_id)
            raise EventLogUnavailable("append failed: nats: no response from stream")
        return await real_append(self, event, **kw)

    monkeypatch.setattr(EventLog, "append_event", append_failing_the_first_start)
    log = EventLog(nc)
    async with agent_running(nats_server.url, tmp_path, ack_wait_s=600.0):
        await dispatch(log, "g", "s", "n1", "echo ran")
        done = await wait_event(log, "g", "s", ev.TaskCompleted, timeout=60)
    assert failed == ["start:g:s:1"]
    assert (done.outcome, done.attempt) == ("success", 1)
    starts = [e for e in await task_events(log, "g", "s") if isinstance(e, ev.TaskStarted)]
    assert len(starts) == 1

import nats, datetime
from orchestrator.eventlog import EventLog
from orchestrator.errors import ConcurrencyConflict
from schemas import events as e
import pytest
async def test_smoke(nc):
    log = EventLog(nc); await log.ensure_stream(); await log.ensure_stream()
    now = datetime.datetime.now(datetime.timezone.utc)
    d = e.TaskDispatched(event_id="d1", occurred_at=now, graph_id="g", task_id="T-1", node_id="n1", attempt=1, command="true")
    s1 = await log.append_event(d, version=1, expected_seq=0)
    with pytest.raises(ConcurrencyConflict):
        await log.append_event(d, version=1, expected_seq=0, msg_id="other")
    st = e.TaskStarted(event_id="s1", occurred_at=now, graph_id="g", task_id="T-1", node_id="n1", attempt=1)
    from orchestrator.eventlog import event_append
    seqs = await log.append_atomic([event_append(st, version=2, expected_seq=s1), event_append(e.TaskCompleted(event_id="c1", occurred_at=now, graph_id="g", task_id="T-1", node_id="n1", attempt=1, outcome="success"), version=3)])
    assert seqs == [2,3]
    evs = await log.read_events("ev.task.g.T-1.>")
    assert [s for s,_ in evs] == [1,2,3]
    assert await log.last_seq("ev.task.g.T-1.>") == 3

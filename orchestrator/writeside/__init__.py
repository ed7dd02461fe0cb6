"""The write side: the event log on JetStream (guarded appends, reads back), the eventsourcing
recorders, mapper and application, the task invariants every command passes, the sync-to-async
bridge, submitting a graph and the Python API.

May import: `schemas`, `orchestrator.errors`, `orchestrator.graphs`, `orchestrator.runtime`
(connection, ordered consumers). Not `decision`, `processes`, `cli`.
"""

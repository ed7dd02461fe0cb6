"""DuckDB over the Parquet archive, with ready views: events, tasks, decisions, nodes.

``open_archive`` returns an in-memory DuckDB connection whose views read the archive files
as they are now (files appear whole, by rename, so a query works while the system runs).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from projections.archive.projector import COLUMNS

_CANDIDATE = '[{"node_id": "VARCHAR", "score": "DOUBLE", "reason": "VARCHAR", "eligible": "BOOLEAN"}]'

TASKS_VIEW = """
CREATE VIEW tasks AS
WITH d AS (
    SELECT graph_id, task_id, attempt, node_id, occurred_at AS dispatched,
           TRY_CAST(json->>'$.expected_duration_s' AS DOUBLE) AS expected
    FROM events WHERE type = 'TaskDispatched' AND coalesce(json->>'$.phase', 'run') = 'run'),
s AS (
    SELECT graph_id, task_id, attempt, min(occurred_at) AS started
    FROM events WHERE type = 'TaskStarted' GROUP BY ALL),
c AS (
    SELECT graph_id, task_id, attempt, min(occurred_at) AS finished, any_value(json->>'$.outcome') AS outcome,
           any_value(TRY_CAST(json->>'$.duration_s' AS DOUBLE)) AS duration,
           any_value(TRY_CAST(json->>'$.exit_code' AS INTEGER)) AS exit_code,
           any_value(TRY_CAST(json->>'$.quality' AS DOUBLE)) AS quality,
           any_value(json->>'$.error') AS error
    FROM events WHERE type = 'TaskCompleted' AND coalesce(json->>'$.phase', 'run') = 'run' GROUP BY ALL),
l AS (
    SELECT graph_id, task_id, attempt, min(occurred_at) AS lost_at, any_value(json->>'$.reason') AS reason
    FROM events WHERE type = 'TaskLost' GROUP BY ALL)
SELECT d.graph_id AS graph, d.task_id AS task, d.node_id AS node, d.attempt, d.dispatched, s.started,
       coalesce(c.finished, l.lost_at) AS finished,
       CASE WHEN c.outcome IS NOT NULL THEN c.outcome WHEN l.lost_at IS NOT NULL THEN 'lost' END AS outcome,
       c.duration, d.expected, c.exit_code, c.quality, coalesce(nullif(c.error, ''), l.reason) AS error
FROM d LEFT JOIN s USING (graph_id, task_id, attempt)
       LEFT JOIN c USING (graph_id, task_id, attempt)
       LEFT JOIN l USING (graph_id, task_id, attempt)
"""

DECISIONS_VIEW = f"""
CREATE VIEW decisions AS
SELECT seq, occurred_at AS decided_at, graph_id AS graph, task_id AS task, node_id AS node, attempt,
       coalesce(json->>'$.phase', 'run') AS phase, json->>'$.policy' AS policy, json->>'$.strategy' AS strategy,
       TRY_CAST(json->>'$.confidence' AS DOUBLE) AS confidence, json->>'$.autonomy' AS autonomy,
       json->>'$.world_hash' AS world_hash, json->>'$.decider_id' AS decider,
       json->>'$.decider_version' AS decider_version, json->'$.view_seqs' AS view_seqs,
       from_json(json->'$.candidates', '{_CANDIDATE}') AS candidates
FROM events WHERE type = 'TaskDispatched'
"""

NODES_VIEW = """
CREATE VIEW nodes AS
SELECT node_id AS node,
       arg_max(TRY_CAST(json->>'$.slots' AS INTEGER), seq) FILTER (WHERE type = 'NodeRegistered') AS slots,
       arg_max(json->'$.labels', seq) FILTER (WHERE type = 'NodeRegistered') AS labels,
       min(occurred_at) FILTER (WHERE type = 'NodeRegistered') AS registered_at,
       max(occurred_at) AS last_seen,
       count(*) FILTER (WHERE type = 'TaskDispatched') AS dispatched,
       count(*) FILTER (WHERE type = 'TaskCompleted' AND json->>'$.outcome' <> 'failure') AS succeeded,
       count(*) FILTER (WHERE type = 'TaskCompleted' AND json->>'$.outcome' = 'failure') AS failed,
       count(*) FILTER (WHERE type = 'TaskLost') AS lost,
       bool_or(type = 'NodeLost') AS was_lost
FROM events WHERE node_id IS NOT NULL GROUP BY node_id
"""


def open_archive(directory: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views ``events``, ``tasks``, ``decisions`` and ``nodes``."""
    con = duckdb.connect()
    files = sorted(directory.glob("day=*/events-*.parquet")) if directory.exists() else []
    if files:
        pattern = str(directory / "day=*" / "events-*.parquet").replace("'", "''")
        source = f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"
        con.execute(f"CREATE VIEW events AS SELECT * FROM {source}")
    else:
        cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
        con.execute(f"CREATE TABLE events ({cols}, day VARCHAR)")
    for view in (TASKS_VIEW, DECISIONS_VIEW, NODES_VIEW):
        con.execute(view)
    return con


def run_query(directory: Path, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Column names and rows of ``sql`` over the archive; `duckdb.Error` on a bad query."""
    con = open_archive(directory)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return names, cur.fetchall()
    finally:
        con.close()

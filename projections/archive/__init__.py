"""The archive: every event into Parquet files exactly once (`projector`), and DuckDB over them
(`query`).

May import: `schemas`, `orchestrator.writeside.eventlog`, `orchestrator.runtime`.
"""

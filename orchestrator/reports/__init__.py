"""Answers for people from the log and the views: a task explained, the status snapshot, the
status queries, the run's metrics and its Gantt chart.

May import: `decision`, `graphs`, `projections`, `runtime` (connection), `schemas`. Not `cli`.
"""

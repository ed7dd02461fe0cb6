"""Rebuilding views from the log: the folds advanced together (`folds`), the rebuild from
sequence 1 (`build`), optionally split with a worker process (`worker`), and the comparison of
the live views with a rebuild (`verify`).

May import: the projections, the log reader, `orchestrator.runtime` (ordered watch) and `schemas`.
"""

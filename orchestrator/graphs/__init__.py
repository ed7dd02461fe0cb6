"""Graphs as people write them: file formats (TOML, JSON, WfFormat), validation naming file, task and
field, the rules' and inputs/outputs' checks, a graph's shape, its source tree, and the events that
accept a graph (`submission`).

May import: `schemas`, `orchestrator.errors`. Nothing of NATS, asyncio, views or processes.
"""

"""Ninja build files in: the manifest parser (`manifest`), its variables (`scope`), where a build's
folders go in a task's workspace and how commands are rewritten for it (`pathmap`), and the
conversion of build edges into a graph document (`importer`); `load` reads the files from disk.

May import: `schemas`, `orchestrator.errors`, `orchestrator.graphs`. Nothing of NATS, asyncio or
processes: a Ninja file becomes the same plain graph document a TOML file gives.
"""

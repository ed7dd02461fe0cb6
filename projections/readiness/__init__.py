"""The readiness view: each task's state, what it waits for and who waits for it; graph totals.
Holds the fold (`fold.evolve_readiness`), its KV entries, the fold's state (`view`), how graph
events change it (`graphevents`) and a graph's static ranks (`graphrank`).

May import: `schemas`, `projections.fold`, `projections.feedback`, `orchestrator.graphs`,
`orchestrator.writeside.taskrules`. Pure: nothing of NATS or asyncio.
"""

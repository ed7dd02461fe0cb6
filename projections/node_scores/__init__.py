"""The node-scores view: each node's registration, observations, liveness and learned scores, and
the command x error-signature patterns it holds. The fold (`fold`), its entries and patterns.

May import: `schemas`, `projections.fold`, `projections.feedback`, `projections.decay`,
`orchestrator.graphs`. Pure: nothing of NATS or asyncio.
"""

"""The confidence view: predictions checked against outcomes, confidence, autonomy, staleness. The
fold (`fold`), its entries and its state (`view`).

May import: `schemas`, `projections.fold`, `projections.feedback`, `projections.decay`,
`orchestrator.graphs`. Pure: nothing of NATS or asyncio.
"""

"""The pure decision core: `decide(views, now, config) -> decisions`, with what it is built from
(priority and scoring, candidates, the ready set, slots, availability, flags, generated work and the
backlog rules, signals, why a task waits), and the one task lifecycle (`lifecycle`: the states
and transitions the write side, the readiness view and verify all fold by). Time, ids and
randomness come in as arguments.

May import: `schemas`, `orchestrator.errors`, `orchestrator.graphs`, the view values in
`projections` (readiness, node_scores, confidence, feedback, decay). Nothing of NATS or asyncio,
also not transitively (tests/unit/test_layout.py checks).
"""

"""Replay of a recorded log: the world at a sequence, every decision re-run (`replay --check`,
split over processes), what-if on another config, the simulator on a virtual clock, and the
invariants over the whole log (`verify`).

May import: `decision`, `graphs`, `projections`, `schemas`. Not `processes`, `runtime`, `cli`.
"""

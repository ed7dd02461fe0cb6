"""`niyantra` commands about agents (registered on the app of `orchestrator.cli`)."""

from __future__ import annotations

from orchestrator.cli import app  # noqa: F401

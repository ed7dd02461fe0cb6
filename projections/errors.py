"""Errors raised by the projections package.

ProjectionError
 └── ViewStoreUnavailable    the KV bucket holding a view could not be read or written
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of every error raised by `projections`."""


class ViewStoreUnavailable(ProjectionError):
    """The KV bucket of a view could not be read or written."""

"""Errors raised by the artifact store, the local cache, the workspace layout and output collection.

ArtifactError (an AgentError)            ``retryable`` says whether running the task again may help
 ├── UnsafePath            a path that is absolute, climbs out with ``..`` or leads out through a symlink
 ├── OutputMissing         a declared output path that the task did not write
 ├── NotAFile              a declared output that is neither a regular file nor a directory of files
 ├── LayoutFailed          a manifest entry that cannot be laid out (a directory in the way, ...)
 ├── BlobTooLarge          a file bigger than the store's per-blob limit
 ├── FileChanged           a file that changed while it was being stored
 ├── BlobNotFound          no blob of that digest in the store
 ├── BlobCorrupt           a blob whose content does not hash to its name: a miss, never used
 ├── NoSuchOutput          ``artifacts get``: no such output recorded for that task
 ├── InputUnavailable      a blob a task's workspace needs could not be fetched or did not verify (path, digest)
 └── ArtifactStoreUnavailable   the store cannot be reached, created or written in time
      └── ArtifactStoreFull      the bucket is at its size limit (``gc`` or a larger bucket helps)
"""

from __future__ import annotations

from node_agent.errors import AgentError


class ArtifactError(AgentError):
    """Root of the artifact errors; ``retryable`` tells the agent how to report the task."""

    retryable = False


class UnsafePath(ArtifactError):
    """A path that leads outside the workspace."""

    def __init__(self, path: str, why: str) -> None:
        self.path, self.why = path, why
        super().__init__(f"path {path!r} is refused: {why}")


class OutputMissing(ArtifactError):
    """A declared output (a plain path, not a glob) that is not in the workspace."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"declared output {path!r} is missing from the workspace")


class NotAFile(ArtifactError):
    """A declared output that is a socket, a device, a fifo or a dangling link."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        super().__init__(f"declared output {path!r} is {kind}, not a regular file")


class LayoutFailed(ArtifactError):
    """A manifest entry that cannot be put at its path in the workspace."""

    def __init__(self, path: str, why: str) -> None:
        self.path, self.why = path, why
        super().__init__(f"cannot lay out {path!r}: {why}")


class BlobTooLarge(ArtifactError):
    """A file over the per-blob limit."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{path} is {size:,} bytes, over the artifact store's limit of {limit:,} bytes per blob")


class FileChanged(ArtifactError):
    """A file whose content changed between hashing and uploading it (something still writes it)."""

    retryable = True

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(f"{path} changed while it was stored (sha256 {expected[:12]}… then {actual[:12]}…)")


class BlobNotFound(ArtifactError):
    """No blob of that digest in the store."""

    retryable = True

    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"no blob sha256:{digest} in the artifact store")


class BlobCorrupt(ArtifactError):
    """A blob whose content does not hash to its name; a miss, and the bad copy is never used."""

    retryable = True

    def __init__(self, digest: str, actual: str, where: str) -> None:
        self.digest, self.actual, self.where = digest, actual, where
        super().__init__(f"blob sha256:{digest} is corrupt ({where}: its content hashes to {actual or '?'})")


class NoSuchOutput(ArtifactError):
    """No recorded output of that path (or no successful completion) for a task."""

    def __init__(self, graph_id: str, task_id: str, path: str, why: str) -> None:
        self.graph_id, self.task_id, self.path, self.why = graph_id, task_id, path, why
        super().__init__(f"task {graph_id}/{task_id} has no output {path!r}: {why}")


class InputUnavailable(ArtifactError):
    """A file of a task's layout (source or a dependency's output) whose blob could not be had intact:
    the task does not run on it."""

    def __init__(self, path: str, digest: str, why: str, retryable: bool = True) -> None:
        self.path, self.digest, self.why = path, digest, why
        self.retryable = retryable
        super().__init__(f"input {path!r} (sha256:{digest}) cannot be laid out: {why}")


class ArtifactStoreUnavailable(ArtifactError):
    """The artifact bucket cannot be reached, created, read or written."""

    retryable = True


class ArtifactStoreFull(ArtifactStoreUnavailable):
    """The bucket is at its ``max_bytes``: nothing more is stored until blobs are removed."""

    def __init__(self, path: str, limit: int | None) -> None:
        self.path, self.limit = path, limit
        size = f" of {limit:,} bytes" if limit else ""
        super().__init__(
            f"cannot store {path}: the artifact bucket is full (its limit{size}); "
            "run `niyantra artifacts gc` or give the bucket more room"
        )

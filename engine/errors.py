"""The two kinds of failure the engine tells apart from a bug."""
from __future__ import annotations


class JobError(ValueError):
    """A job that cannot run as written, with the place of the problem in its message
    (e.g. `pipeline[2].quality.rules: ...`)."""


class StorageError(OSError):
    """The storage, not the data, failed while a shard was read (a dropped connection, a timeout,
    a disk error). The runner redoes the shard rather than record it as damaged: a corrupt gzip
    member is the shard's content, a reset connection is not. Raised by files opened with
    `engine.io.open_input`; readers must let it through."""

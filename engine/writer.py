"""The writer contract: one output file format (Parquet, JSON lines, ...), registered by name.

The engine decides what goes where (documents/ partitioned by `output.partition_by`, rejects/ by
operator, parts rolled by size; see engine.output); a writer only puts batches into one open file
and reads such a file back, so that every reader of an output (tests, `decant report`, a later
job) goes through the format's own code.
"""
from __future__ import annotations

from typing import Any, BinaryIO, ClassVar

import pyarrow as pa


class Writer:
    kind: ClassVar[str] = "writer"
    #: The format name job files use (`output.format`).
    name: ClassVar[str] = ""
    #: File name ending of this format's files (e.g. ".parquet").
    suffix: ClassVar[str] = ""
    #: Whether small batches are held and written together (a row group each costs a format like
    #: Parquet; a format whose batches cost nothing apart writes each at once).
    holds_batches: ClassVar[bool] = True

    def __init__(self, fh: BinaryIO, schema: pa.Schema) -> None:
        self.fh = fh
        self.schema = schema

    def write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (footer, gzip trailer); the caller closes `fh`."""

    @classmethod
    def read(cls, fh: Any) -> pa.Table:
        """A whole file of this format, as written."""
        raise NotImplementedError

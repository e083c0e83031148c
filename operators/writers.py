"""Output file formats: Parquet (zstd) and gzipped JSON lines, registered by `output.format` name.

Where files go (partitions, parts, staging) is the engine's (engine.output); these classes only
write batches into one file and read such a file back. `read_documents`/`read_rejects` read a
finished output through them.
"""
from __future__ import annotations

import gzip
import io
import json
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from engine.output_tree import iter_documents, iter_rejects, read_documents, read_rejects, sort_by_id
from engine.registry import register
from engine.writer import Writer

__all__ = ["JsonlWriter", "ParquetWriter", "iter_documents", "iter_rejects", "read_documents", "read_rejects",
           "sort_by_id"]


@register
class ParquetWriter(Writer):
    name: ClassVar[str] = "parquet"
    suffix: ClassVar[str] = ".parquet"

    def __init__(self, fh, schema: pa.Schema) -> None:
        super().__init__(fh, schema)
        self._pq = pq.ParquetWriter(fh, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._pq.write_batch(batch)

    def close(self) -> None:
        self._pq.close()

    @classmethod
    def read(cls, fh: Any) -> pa.Table:
        return pq.read_table(fh)


@register
class JsonlWriter(Writer):
    """One JSON object per line, gzip with a zero mtime so that the bytes are the same every run."""

    name: ClassVar[str] = "jsonl"
    suffix: ClassVar[str] = ".jsonl.gz"

    def __init__(self, fh, schema: pa.Schema) -> None:
        super().__init__(fh, schema)
        self._gz = gzip.GzipFile(fileobj=fh, mode="wb", mtime=0)

    def write(self, batch: pa.RecordBatch) -> None:
        buf = io.StringIO()
        for row in batch.to_pylist():
            buf.write(json.dumps(row, ensure_ascii=False, default=str))
            buf.write("\n")
        self._gz.write(buf.getvalue().encode())

    def close(self) -> None:
        self._gz.close()

    @classmethod
    def read(cls, fh: Any) -> pa.Table:
        rows = [json.loads(line) for line in gzip.open(fh, "rt")]
        return pa.Table.from_pylist(rows)

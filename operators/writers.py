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

from engine.documents import TEXT
from engine.output_tree import iter_documents, iter_rejects, read_documents, read_rejects, sort_by_id
from engine.registry import register
from engine.writer import Writer
from operators.columns import HTML

__all__ = ["JsonlWriter", "ParquetWriter", "iter_documents", "iter_rejects", "read_documents", "read_rejects",
           "sort_by_id"]


#: Arrow type ids of strings and bytes (the view types where this pyarrow has them).
_BYTES_TYPE_IDS = frozenset(make().id for make in (
    pa.string, pa.large_string, pa.binary, pa.large_binary,
    *(getattr(pa, n) for n in ("string_view", "binary_view") if hasattr(pa, n))))
#: Payload columns: long values whose min/max statistics no reader filters on (in a file of a few
#: documents they were half its bytes).
PAYLOAD_COLUMNS = frozenset({TEXT, HTML})


def column_codecs(schema: pa.Schema) -> dict[str, str]:
    """zstd for text (strings and bytes: nearly all of a document file's bytes), snappy for the
    numeric signal columns, and no dictionary pages. A partitioned output writes a file per shard,
    language and bucket, most of them small: zstd on each of ~50 column chunks was half the cost of
    writing a small file (2.2 vs 1.2 ms), for 1.6% smaller files on a WET job's documents, and the
    dictionary pages cost more than they saved. (Type ids, not `pa.types.is_*` per field: this runs
    for every file.)"""
    return {n: "zstd" if t.id in _BYTES_TYPE_IDS else "snappy" for n, t in zip(schema.names, schema.types)}


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The codecs of `column_codecs`, and statistics on every column but the payload ones."""
    return {"compression": column_codecs(schema), "use_dictionary": False,
            "write_statistics": [n for n in schema.names if n not in PAYLOAD_COLUMNS]}


@register
class ParquetWriter(Writer):
    name: ClassVar[str] = "parquet"
    suffix: ClassVar[str] = ".parquet"

    def __init__(self, fh, schema: pa.Schema) -> None:
        super().__init__(fh, schema)
        self._pq = pq.ParquetWriter(fh, schema, **parquet_options(schema))

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

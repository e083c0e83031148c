"""The document batch: the Arrow columns every operator reads and writes.

Batches are `pyarrow.RecordBatch`. Base columns are always present (nullable); operators add
their outputs as further columns. Columns whose name starts with `_` are internal to the engine
(ordering keys, reader drop reasons) and never reach the written output.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID = "id"
URL = "url"
DATE = "date"
SOURCE = "source"
HTML = "html"
TEXT = "text"
LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"
PERPLEXITY = "perplexity"
BUCKET = "bucket"

#: Internal: a uint64 key giving every input document a global, deterministic order:
#: (shard index << 32) | ordinal of the document within its shard. Global operators use it to
#: decide "first occurrence" and "smallest document" the same way whatever the worker count.
KEY = "_key"
#: Internal: set by a reader on rows that cannot become documents (binary payload, undecodable,
#: oversized); the engine routes them to the rejects of the reader with that reason.
DROP_REASON = "_drop_reason"

BASE_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string()),
        pa.field(URL, pa.string()),
        pa.field(DATE, pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field(HTML, pa.string()),
        pa.field(TEXT, pa.string()),
    ]
)
BASE_COLUMNS: tuple[str, ...] = tuple(BASE_SCHEMA.names)

#: Columns of a reject row (plus `text` when the job asks to keep rejected text).
REJECT_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string()),
        pa.field(URL, pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field("operator", pa.string()),
        pa.field("reason", pa.string()),
    ]
)


def is_internal(name: str) -> bool:
    return name.startswith("_")


def make_batch(columns: dict[str, Sequence | pa.Array], extra_schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Build a batch with every base column present (missing ones are all-null strings)."""
    n = None
    for v in columns.values():
        n = len(v)
        break
    n = n or 0
    arrays, fields = [], []
    for f in BASE_SCHEMA:
        v = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if v is None else _as_array(v, f.type))
        fields.append(f)
    for name, v in columns.items():
        if name in BASE_COLUMNS:
            continue
        typ = extra_schema.field(name).type if extra_schema is not None and name in extra_schema.names else None
        arr = _as_array(v, typ)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _as_array(v, typ=None) -> pa.Array:
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if isinstance(v, pa.Array):
        return v if typ is None or v.type == typ else v.cast(typ)
    return pa.array(v, type=typ)


def set_column(batch: pa.RecordBatch, name: str, values) -> pa.RecordBatch:
    """Return `batch` with column `name` added or replaced."""
    arr = _as_array(values)
    if len(arr) != batch.num_rows:
        raise ValueError(f"column {name!r} has {len(arr)} rows, batch has {batch.num_rows}")
    idx = batch.schema.get_field_index(name)
    if idx >= 0:
        return batch.set_column(idx, pa.field(name, arr.type), arr)
    return batch.append_column(pa.field(name, arr.type), arr)


def filter_rows(batch: pa.RecordBatch, mask: np.ndarray) -> pa.RecordBatch:
    return batch.filter(pa.array(np.asarray(mask, dtype=bool)))


def column_list(batch: pa.RecordBatch, name: str) -> list:
    """A column as a Python list (for per-row library calls such as trafilatura or fastText)."""
    return batch.column(name).to_pylist()


def texts(batch: pa.RecordBatch) -> list[str]:
    """The `text` column with nulls as empty strings."""
    return [t or "" for t in batch.column(TEXT).to_pylist()]


def public(batch: pa.RecordBatch | pa.Table, drop: Iterable[str] = (HTML,)):
    """The batch as written: internal columns and the raw HTML removed."""
    dropset = set(drop)
    keep = [n for n in batch.schema.names if not is_internal(n) and n not in dropset]
    return batch.select(keep)


def concat(batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches).unify_dictionaries() if batches else pa.table({})


def null_count(arr: pa.Array) -> int:
    return int(pc.sum(pc.is_null(arr)).as_py() or 0)


def content_bytes(batch: pa.RecordBatch) -> int:
    """UTF-8 bytes of the html and text columns (what an operator had to look at), via Arrow."""
    total = 0
    for name in (HTML, TEXT):
        if name in batch.schema.names:
            col = batch.column(name)
            if col.null_count < len(col):
                total += int(pc.sum(pc.binary_length(col)).as_py() or 0)
    return total

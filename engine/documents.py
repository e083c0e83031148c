"""The document batch: the Arrow columns the engine itself relies on.

Batches are `pyarrow.RecordBatch`. The base columns (id, url, date, source, text) are always
present (nullable); readers and operators add theirs as further columns (the web-specific ones,
such as html or language, are defined in operators/). Columns whose name starts with `_` are
internal to the engine (ordering keys, reader drop reasons) and never reach the written output.
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
TEXT = "text"

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
    """Build a batch with every base column present (missing ones are all-null strings); other
    columns follow in the order given, typed by `extra_schema` where it names them."""
    n = next((len(v) for v in columns.values()), 0)
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


def texts(batch: pa.RecordBatch) -> list[str]:
    """The `text` column with nulls as empty strings."""
    return [t or "" for t in batch.column(TEXT).to_pylist()]


def public(batch: pa.RecordBatch | pa.Table, drop: Iterable[str] = ()):
    """The batch as written: internal columns and the columns in `drop` removed."""
    dropset = set(drop)
    keep = [n for n in batch.schema.names if not is_internal(n) and n not in dropset]
    return batch.select(keep)


def null_count(arr: pa.Array) -> int:
    return int(pc.sum(pc.is_null(arr)).as_py() or 0)


def string_bytes(batch: pa.RecordBatch, columns: Iterable[str]) -> int:
    """UTF-8 bytes of the named string columns that the batch has (what an operator had to look
    at), via Arrow."""
    total = 0
    for name in columns:
        if name not in batch.schema.names:
            continue
        col = batch.column(name)
        if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                or pa.types.is_binary(col.type)) and col.null_count < len(col):
            total += int(pc.sum(pc.binary_length(col)).as_py() or 0)
    return total

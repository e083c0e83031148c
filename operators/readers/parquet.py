"""Parquet reader: row groups streamed as batches -> documents, other columns kept with their types.

A big file splits at row groups (the footer says each group's rows and compressed size), so a
range's `source` and fallback ids (`<file>:<row>`) are those of the whole file's read.

Parquet already has one schema per file, so the columns are consistent across batches; the reader
only maps the input's own id/text/url/date onto the base columns (CCNet's `raw_content` and `digest`
included) and renames fields that collide with engine-owned names.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.documents import DROP_REASON, make_batch
from engine.errors import StorageError
from engine.reader import Reader, ShardRange
from engine.registry import register

from .base import DOC_COLUMNS, basename, check_params, stable_id
from .jsonl import RENAME_PREFIX


def _to_string(arr: pa.Array) -> pa.Array:
    binary = pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
        try:
            arr.validate(full=True)  # Parquet readers do not check UTF-8; operators would fail on it
            return arr
        except pa.ArrowInvalid:
            arr, binary = arr.cast(pa.binary()), True
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if binary:  # bytes that are not all valid UTF-8: decode each value, bad bytes -> U+FFFD
            return pa.array([None if v is None else v.decode("utf-8", "replace") for v in arr.to_pylist()],
                            pa.string())
        import json
        return pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                         for v in arr.to_pylist()], pa.string())


@register
class ParquetReader(Reader):
    """Parquet files -> `text` documents with every other column kept."""

    name: ClassVar[str] = "parquet"
    content_column: ClassVar[str] = "text"
    suffixes: ClassVar[tuple[str, ...]] = (".parquet", ".pq")
    columns: ClassVar[tuple[str, ...]] = ("html",)
    transient_columns: ClassVar[tuple[str, ...]] = ("html",)
    OPTIONS: ClassVar[set[str]] = {"text_field", "id_field"}

    def __init__(self, text_field: str = "auto", id_field: str = "id", **params: Any) -> None:
        check_params(self.name, params, set())
        super().__init__(text_field=text_field, id_field=id_field)
        self.text_field = text_field
        self.id_field = id_field

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        return head[:4] == b"PAR1"

    def split(self, path: str, target_bytes: int) -> list[ShardRange] | None:
        """Runs of whole row groups of about `target_bytes` compressed; `start`/`end` are row group
        numbers, `first_ordinal` (and `first_record`) the rows before the range."""
        f = self.open_shard(path)
        if f is None:
            return None
        with f:
            meta = pq.ParquetFile(f).metadata
        ranges: list[ShardRange] = []
        group0, row0, rows, size = 0, 0, 0, 0
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            if size >= target_bytes:
                ranges.append(ShardRange(group0, g, row0, row0))
                group0, row0, size = g, rows, 0
            size += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
            rows += rg.num_rows
        ranges.append(ShardRange(group0, -1, row0, row0))
        return ranges if len(ranges) > 1 else None

    def read(self, path: str, batch_size: int, part: ShardRange | None = None) -> Iterator[pa.RecordBatch]:
        shard = basename(path)
        f = self.open_shard(path)
        if f is None:
            return
        batch_size = max(1, int(batch_size))
        with f:
            try:
                pf = pq.ParquetFile(f)
                sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
            except StorageError:
                raise
            except Exception as e:  # noqa: BLE001 - corrupt footer, not Parquet
                self.errors.append(f"not a readable Parquet file: {type(e).__name__}: {e}")
                return
            first, last = (0, len(sizes)) if part is None else (part.start, len(sizes) if part.end < 0 else part.end)
            row = 0 if part is None else part.first_ordinal
            for group in range(first, last):  # one row group at a time: damage costs only its rows
                end = row + sizes[group]
                try:
                    for raw in pf.iter_batches(batch_size=batch_size, row_groups=[group]):
                        out = self._convert(raw, shard, row)
                        row += raw.num_rows
                        yield out
                except StorageError:
                    raise
                except Exception:  # noqa: BLE001 - the footer says how many rows the group had
                    for lo in range(row, end, batch_size):
                        yield self._unreadable(pf.schema_arrow, shard, lo, min(end, lo + batch_size))
                row = end

    def _unreadable(self, schema: pa.Schema, shard: str, lo: int, hi: int) -> pa.RecordBatch:
        """Reject rows for rows lo..hi-1 (0-based) of a row group that cannot be decoded: the
        file's columns, all null, so the batch looks like the others; ids from the row number."""
        n = hi - lo
        try:
            empty = pa.RecordBatch.from_arrays([pa.nulls(n, f.type) for f in schema], schema=schema)
        except (pa.ArrowException, TypeError, ValueError):  # a type without nulls: base columns only
            empty = pa.RecordBatch.from_pydict({"row": pa.nulls(n, pa.string())}).drop_columns(["row"])
        out = self._convert(empty, shard, lo)
        i = out.schema.get_field_index(DROP_REASON)
        return out.set_column(i, DROP_REASON, pa.array(["corrupt_row_group"] * n, pa.string()))

    def _convert(self, raw: pa.RecordBatch, shard: str, row0: int) -> pa.RecordBatch:
        n = raw.num_rows
        names = raw.schema.names
        self.count("records", "row", n)
        tf = self.text_field
        if tf == "auto":
            tf = "text" if "text" in names else "raw_content" if "raw_content" in names else "text"
        used = set()

        def take(name: str) -> pa.Array | None:
            if name in names:
                used.add(name)
                return _to_string(raw.column(name))
            return None

        text = take(tf)
        ids = take(self.id_field)
        positions = range(row0 + 1, row0 + n + 1)
        fallback = None
        if self.id_field == "id" and "digest" in names:
            fallback = _to_string(raw.column("digest")).to_pylist()
        if ids is None or ids.null_count:
            idl = ids.to_pylist() if ids is not None else [None] * n
            ids = pa.array([v if v is not None else (fallback[i] if fallback and fallback[i] else
                                                     stable_id(shard, p))
                            for i, (v, p) in enumerate(zip(idl, positions))], pa.string())
        url = take("url")
        date = take("date") if "date" in names else (_to_string(raw.column("date_download"))
                                                     if "date_download" in names else None)
        html = take("html") if "html" in names and pa.types.is_string(raw.schema.field("html").type) else None
        cols: dict[str, Any] = {"id": ids, "url": url, "date": date,
                                "source": [f"{shard}:{p}" for p in positions],
                                "html": html if html is not None else pa.nulls(n, pa.string()), "text": text}
        missing = [None] * n
        if text is None and html is None:
            missing = ["missing_text"] * n
        else:
            t_null = pc.is_null(text).to_pylist() if text is not None else [True] * n
            h_null = pc.is_null(html).to_pylist() if html is not None else [True] * n
            missing = ["missing_text" if a and b else None for a, b in zip(t_null, h_null)]
        cols[DROP_REASON] = pa.array(missing, pa.string())
        for name in names:
            if name in used:
                continue
            col = name if name not in DOC_COLUMNS and not name.startswith("_") else RENAME_PREFIX + name.lstrip("_")
            cols[col] = raw.column(name)
        return make_batch(cols)

"""Writers: documents partitioned by language and bucket, rejects by operator; Parquet or JSONL.gz.

A writer belongs to one shard of one job. It writes into that shard's staging folder and
`commit()` renames every finished file into OUT, so a worker killed mid-shard leaves nothing in
OUT; the redo writes the same names with the same content (names come from the shard index, not
from timing), which is what makes output deterministic under retries and resumes.
"""
from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine import io as eio
from engine.documents import BUCKET, ID, LANGUAGE, REJECT_SCHEMA, SOURCE, TEXT, URL, public

SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl.gz"}


def _safe(value, default: str) -> str:
    v = ("" if value is None else str(value)).strip() or default
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in v)


class _RollingFile:
    """One output folder: appends batches, rolls to a new part when the size passes the limit."""

    def __init__(self, folder: str, prefix: str, fmt: str, max_bytes: int) -> None:
        self.folder, self.prefix, self.fmt, self.max_bytes = folder, prefix, fmt, max_bytes
        self.part = 0
        self.size = 0
        self.schema: pa.Schema | None = None
        self._fh = None
        self._writer = None
        self.files: list[str] = []

    def _open(self, schema: pa.Schema) -> None:
        name = f"{self.folder}/{self.prefix}-{self.part:04d}{SUFFIX[self.fmt]}"
        eio.makedirs(self.folder)
        fs, p = eio.fs_and_path(name)
        self._fh = fs.open(p, "wb")
        if self.fmt == "parquet":
            self._writer = pq.ParquetWriter(self._fh, schema, compression="zstd")
        else:
            self._writer = gzip.GzipFile(fileobj=self._fh, mode="wb", mtime=0)
        self.schema = schema
        self.files.append(name)
        self.size = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self._writer is not None and self.schema is not None and batch.schema != self.schema:
            try:
                batch = batch.select(self.schema.names).cast(self.schema) \
                    if set(batch.schema.names) == set(self.schema.names) else None
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
                batch = None
            if batch is None:
                raise _SchemaChange
        if self._writer is None:
            self._open(batch.schema)
        if self.fmt == "parquet":
            self._writer.write_batch(batch)
        else:
            buf = io.StringIO()
            for row in batch.to_pylist():
                buf.write(json.dumps(row, ensure_ascii=False, default=str))
                buf.write("\n")
            self._writer.write(buf.getvalue().encode())
        self.size += batch.nbytes
        if self.size >= self.max_bytes:
            self.close()
            self.part += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._fh.close()
            self._writer = self._fh = None
            self.schema = None


class _SchemaChange(Exception):
    pass


class _PartitionedWriter:
    def __init__(self, staging: str, shard: int, fmt: str, max_bytes: int) -> None:
        self.staging = staging.rstrip("/")
        self.prefix = f"part-{shard:06d}"
        self.fmt, self.max_bytes = fmt, max_bytes
        self.files: dict[str, _RollingFile] = {}
        self.rows = 0

    def _write(self, rel: str, batch: pa.RecordBatch) -> None:
        f = self.files.get(rel)
        if f is None:
            f = self.files[rel] = _RollingFile(f"{self.staging}/{rel}", self.prefix, self.fmt, self.max_bytes)
        try:
            f.write(batch)
        except _SchemaChange:
            f.close()
            f.part += 1
            f.write(batch)
        self.rows += batch.num_rows

    def close(self) -> list[str]:
        out = []
        for f in self.files.values():
            f.close()
            out.extend(f.files)
        return out


class DocumentWriter(_PartitionedWriter):
    """documents/language=<lang>/bucket=<bucket>/part-<shard>-<n>: one folder per value pair."""

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        batch = public(batch)
        n = batch.num_rows
        langs = batch.column(LANGUAGE).to_numpy(zero_copy_only=False) if LANGUAGE in batch.schema.names \
            else np.full(n, None, dtype=object)
        buckets = batch.column(BUCKET).to_numpy(zero_copy_only=False) if BUCKET in batch.schema.names \
            else np.full(n, None, dtype=object)
        keys = np.array([f"language={_safe(l, 'unknown')}/bucket={_safe(b, 'none')}" for l, b in zip(langs, buckets)],
                        dtype=object)
        uniq = sorted(set(keys.tolist()))
        for key in uniq:
            sub = batch.filter(pa.array(keys == key)) if len(uniq) > 1 else batch
            self._write(f"documents/{key}", sub)


class RejectWriter(_PartitionedWriter):
    """rejects/operator=<name>/part-<shard>-<n>: id, url, source, operator, reason (+ text)."""

    def __init__(self, staging: str, shard: int, fmt: str, max_bytes: int, with_text: bool = False) -> None:
        super().__init__(staging, shard, fmt, max_bytes)
        self.with_text = with_text

    def write(self, operator: str, batch: pa.RecordBatch, reasons: Iterable[str]) -> None:
        n = batch.num_rows
        if n == 0:
            return
        cols = {
            ID: batch.column(ID).cast(pa.string()),
            URL: batch.column(URL).cast(pa.string()),
            SOURCE: batch.column(SOURCE).cast(pa.string()),
            "operator": pa.array([operator] * n, pa.string()),
            "reason": pa.array([str(r) for r in reasons], pa.string()),
        }
        schema = REJECT_SCHEMA
        if self.with_text:
            cols[TEXT] = batch.column(TEXT).cast(pa.string())
            schema = schema.append(pa.field(TEXT, pa.string()))
        self._write(f"rejects/operator={_safe(operator, 'unknown')}",
                    pa.RecordBatch.from_arrays(list(cols.values()), schema=schema))


def read_documents(out: str, columns: list[str] | None = None) -> pa.Table:
    """All documents of a finished output, in a stable order (by file name, then row)."""
    return _read_tree(f"{out.rstrip('/')}/documents", columns)


def read_rejects(out: str) -> pa.Table:
    return _read_tree(f"{out.rstrip('/')}/rejects", None)


def _read_tree(root: str, columns: list[str] | None) -> pa.Table:
    files = [f for f in eio.listdir_files(root) if f.endswith((".parquet", ".jsonl.gz"))]
    tables = []
    for f in files:
        rel = f[len(root) + 1:]
        parts = dict(p.split("=", 1) for p in rel.split("/")[:-1] if "=" in p)
        if f.endswith(".parquet"):
            t = eio.read_parquet(f)
        else:
            with eio.open_input(f) as fh:
                rows = [json.loads(line) for line in gzip.open(fh, "rt")]
            t = pa.Table.from_pylist(rows)
        for k, v in parts.items():
            if k not in t.schema.names:
                t = t.append_column(k, pa.array([v] * t.num_rows, pa.string()))
        if columns:
            t = t.select([c for c in columns if c in t.schema.names])
        tables.append(t)
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def sort_by_id(t: pa.Table) -> pa.Table:
    return t.take(pc.sort_indices(t, sort_keys=[(ID, "ascending")])) if t.num_rows else t

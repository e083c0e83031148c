"""What a shard writes into the job's output (reading it back: engine.output_tree).

A shard's files go to its staging folder first and are renamed into OUT when the shard is done
(engine.shard_task), so a worker killed mid-shard leaves nothing in OUT; the redo writes the same
names with the same content (names come from the shard index, never from timing), which keeps the
output deterministic under retries and resumes.

- documents/<col>=<value>/.../part-<shard>-<n>.<fmt>: partitioned by `output.partition_by`
  (folder names from engine.partitioning; the exact values stay in the files);
- rejects/operator=<name>/part-<shard>-<n>.<fmt>: id, url, source, operator, reason (+ text).
Files roll to a new part past `output.max_file_bytes`, or where the batches' columns change.
Batches are held per file and written as one row group of up to ROW_GROUP_BYTES: partitioning cuts
each batch into many small pieces (a language and bucket each), and a row group per piece made
writing the documents a third of a multilingual job's CPU. What a shard holds unwritten over all its
files stays under HELD_BYTES (the files holding most are written first).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import io as eio
from engine import registry
from engine.documents import ID, REJECT_SCHEMA, SOURCE, TEXT, URL, public
from engine.partitioning import partition_path


#: A file's batches are written together once they reach this (before compression).
ROW_GROUP_BYTES = 8 << 20
#: A shard's unwritten batches over all its files, at most.
HELD_BYTES = 64 << 20


class SchemaChanged(Exception):
    """A batch whose columns differ from the open file's: the caller starts a new part."""


class RollingFile:
    """One output folder: appends batches, rolls to a new part when the size passes the limit.

    Its parts are staged flat, as `<staging>/<key>-<n><suffix>` beside the other folders' parts
    (key: the first folder and a number, e.g. `documents-00003`), since a folder per partition in
    staging cost three mkdirs and an rmdir per file; `files` pairs each staged file with its place
    below the output, `<folder>/<prefix>-<n><suffix>`."""

    def __init__(self, staging: str, key: str, folder: str, prefix: str, fmt: str, max_bytes: int) -> None:
        self.staging, self.key = staging, key
        self.folder, self.prefix, self.max_bytes = folder, prefix, max_bytes
        self.format = registry.get_writer(fmt)
        self.part = 0
        self.size = 0
        self._fh = None
        self._writer = None
        self.schema: pa.Schema | None = None  # of the open part (held batches included)
        self.held: list[pa.RecordBatch] = []
        self.held_bytes = 0
        self.files: list[tuple[str, str]] = []  # (staged file, its path below the output)

    def _open(self, schema: pa.Schema) -> None:
        suffix = f"{self.part:04d}{self.format.suffix}"
        staged = f"{self.staging}/{self.key}-{suffix}"
        self._fh = eio.open_output(staged)
        self._writer = self.format(self._fh, schema)
        self.files.append((staged, f"{self.folder}/{self.prefix}-{suffix}"))
        self.size = 0

    def write(self, batch: pa.RecordBatch, nbytes: int | None = None) -> None:
        """`nbytes`: the batch's size if the caller knows it (`RecordBatch.nbytes` of a slice walks
        every column's buffers: ~0.25 ms on a batch of ~50 columns)."""
        if batch.num_rows == 0:
            return
        if self.schema is not None and batch.schema != self.schema:
            if set(batch.schema.names) != set(self.schema.names):
                raise SchemaChanged
            try:
                batch = batch.select(self.schema.names).cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
                raise SchemaChanged from None
        self.schema = batch.schema
        self.held.append(batch)
        self.held_bytes += batch.nbytes if nbytes is None else nbytes
        if (self.held_bytes >= min(ROW_GROUP_BYTES, self.max_bytes - self.size)
                or not self.format.holds_batches):
            self.flush()

    def flush(self) -> None:
        """Write the held batches as one row group; roll past the size limit."""
        if not self.held:
            return
        if self._writer is None:
            self._open(self.schema)
        held = self.held[0] if len(self.held) == 1 else \
            pa.Table.from_batches(self.held).combine_chunks().to_batches(max_chunksize=1 << 40)[0]
        self._writer.write(held)
        self.size += self.held_bytes
        self.held, self.held_bytes = [], 0
        if self.size >= self.max_bytes:
            self.close()
            self.part += 1

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._fh.close()
            self._writer = self._fh = None
        self.schema = None

class FolderWriter:
    """Files of one shard under a staging folder, one rolling file per sub-folder."""

    def __init__(self, staging: str, shard: int | str, fmt: str, max_bytes: int) -> None:
        self.staging = staging.rstrip("/")
        self.prefix = f"part-{shard:06d}" if isinstance(shard, int) else f"part-{shard}"  # str: a range's label
        self.fmt, self.max_bytes = fmt, max_bytes
        self.files: dict[str, RollingFile] = {}
        self.rows = 0

    def write_to(self, rel: str, batch: pa.RecordBatch, nbytes: int | None = None) -> None:
        """`nbytes`: as in `RollingFile.write`."""
        f = self.files.get(rel)
        if f is None:
            key = f"{rel.split('/', 1)[0]}-{len(self.files):05d}"
            f = self.files[rel] = RollingFile(self.staging, key, rel, self.prefix, self.fmt, self.max_bytes)
        try:
            f.write(batch, nbytes)
        except SchemaChanged:
            f.close()
            f.part += 1
            f.write(batch, nbytes)
        self.rows += batch.num_rows
        if sum(x.held_bytes for x in self.files.values()) > HELD_BYTES:
            for x in sorted(self.files.values(), key=lambda x: -x.held_bytes)[:max(1, len(self.files) // 4)]:
                x.flush()

    def close(self) -> list[tuple[str, str]]:
        """(staged file, its path below the output) of every part written."""
        out = []
        for f in self.files.values():
            f.close()
            out.extend(f.files)
        return out

    def publish(self, root: str) -> list[str]:
        """Close, then rename every part to its place below `root`; the paths it now has."""
        done = []
        for staged, rel in self.close():
            done.append(f"{root.rstrip('/')}/{rel}")
            eio.rename(staged, done[-1])
        return done


class DocumentWriter(FolderWriter):
    """documents/<partition folders>/part-<shard>-<n>: one folder per combination of values."""

    def __init__(self, staging: str, shard: int | str, fmt: str, max_bytes: int, partition_by: list[str],
                 drop_columns: Iterable[str] = ()) -> None:
        super().__init__(staging, shard, fmt, max_bytes)
        self.partition_by = list(partition_by)
        self.drop_columns = tuple(drop_columns)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        batch = public(batch, self.drop_columns)
        if not self.partition_by:
            self.write_to("documents", batch)
            return
        combo, values = self._combinations(batch)
        folders = [partition_path(self.partition_by, v) for v in values]  # one name per combination
        if len(values) == 1:
            self.write_to(f"documents/{folders[0]}", batch)
            return
        # one take groups the rows by combination (in their order within each), then a slice per
        # combination: a filter per combination went over the whole batch each time
        order = np.argsort(combo, kind="stable")
        grouped = batch.take(pa.array(order))
        counts = np.bincount(combo, minlength=len(values))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        row_bytes = grouped.nbytes / max(1, grouped.num_rows)
        for i in sorted(range(len(values)), key=folders.__getitem__):
            self.write_to(f"documents/{folders[i]}", grouped.slice(int(starts[i]), int(counts[i])),
                          nbytes=int(row_bytes * counts[i]))

    def _combinations(self, batch: pa.RecordBatch) -> tuple[np.ndarray, list[tuple]]:
        """Each row's combination of partition values (an index), and the combinations, from
        Arrow's dictionary encoding: Python runs once per distinct value, not once per row."""
        n = batch.num_rows
        code = np.zeros(n, dtype=np.int64)
        dictionaries: list[list] = []
        for c in self.partition_by:
            if c not in batch.schema.names or pa.types.is_null(batch.schema.field(c).type):
                dictionaries.append([None])
                continue
            enc = pc.dictionary_encode(batch.column(c), null_encoding="encode")
            dictionaries.append(enc.dictionary.to_pylist())
            code = code * len(dictionaries[-1]) + enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        uniq, combo = np.unique(code, return_inverse=True)
        values = []
        for u in uniq.tolist():
            parts = []
            for d in reversed(dictionaries):
                u, j = divmod(u, len(d))
                parts.append(d[j])
            values.append(tuple(reversed(parts)))
        return combo.reshape(-1), values


class RejectWriter(FolderWriter):
    """rejects/operator=<name>/part-<shard>-<n>: id, url, source, operator, reason (+ text)."""

    def __init__(self, staging: str, shard: int | str, fmt: str, max_bytes: int, with_text: bool = False) -> None:
        super().__init__(staging, shard, fmt, max_bytes)
        self.with_text = with_text

    def write(self, operator: str, batch: pa.RecordBatch, reasons: Iterable[str],
              details: dict[str, pa.Array] | None = None) -> None:
        """`details`: the operator's further columns for these rows (`Result.details`), as strings."""
        n = batch.num_rows
        if n == 0:
            return
        cols = [batch.column(c).cast(pa.string()) if c in batch.schema.names else pa.nulls(n, pa.string())
                for c in (ID, URL, SOURCE)]
        cols += [pa.array([operator] * n, pa.string()), pa.array([str(r) for r in reasons], pa.string())]
        schema = REJECT_SCHEMA
        for name, values in (details or {}).items():
            cols.append(values.combine_chunks().cast(pa.string()) if isinstance(values, pa.ChunkedArray)
                        else values.cast(pa.string()))
            schema = schema.append(pa.field(name, pa.string()))
        if self.with_text:
            cols.append(batch.column(TEXT).cast(pa.string()))
            schema = schema.append(pa.field(TEXT, pa.string()))
        self.write_to(f"rejects/{partition_path(['operator'], (operator,))}",
                      pa.RecordBatch.from_arrays(cols, schema=schema))


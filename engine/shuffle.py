"""Scattering rows by a partition key: the one helper every shuffle uses, the map writer and reader.

`runs(keys)` sorts rows by key (stably, so rows keep their order inside a partition) and returns
the contiguous run of each key; the map writer, the reduce phases of line and MinHash dedup and the
components rounds all scatter through it.

A unit's map output is ONE Parquet file whatever its partition count (on object storage every
file is a request or three): each partition's rows are row groups of their own, and the footer's
key-value metadata says which row groups hold which partition, so a reducer reads only its own.

These files are written once and read once by the same job, and their columns are mostly hashes
and keys that nothing compresses: they are written without dictionary encoding and, on local
disk, uncompressed (`intermediate_options`). zstd with dictionaries spent ~10x the CPU of a plain
write on a MinHash map table (band keys: random uint64) and saved nothing.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine import io as eio

PARTITION = "_partition"


def intermediate_options(fs) -> dict:
    """pyarrow.parquet writer options for a work file on `fs`: no dictionaries; LZ4 on object
    storage (bytes cost more than CPU there), uncompressed on local disk."""
    return {"compression": "lz4" if eio.is_object_store(fs) else "none", "use_dictionary": False}


def write_work_table(table: pa.Table, path: str) -> None:
    """A table as one work file (written atomically, with `intermediate_options`)."""
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, **intermediate_options(eio.fs_and_path(path)[0]))
    eio.write_bytes_atomic(buf.getvalue().to_pybytes(), path)


def runs(keys: np.ndarray) -> tuple[np.ndarray, Iterator[tuple[int, int, int]]]:
    """(order, runs): `order` sorts the rows by key, stably; `runs` yields (key, start, end) of
    each key's rows in that order, keys ascending."""
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]

    def it() -> Iterator[tuple[int, int, int]]:
        if len(sk) == 0:
            return
        bounds = np.flatnonzero(sk[1:] != sk[:-1]) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(sk)]])
        for s, e in zip(starts.tolist(), ends.tolist()):
            yield int(sk[s]), s, e

    return order, it()


def scatter_table(table: pa.Table, keys: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """(key, rows with that key) for each key present, keys ascending, row order kept."""
    order, rs = runs(keys)
    sorted_table = table.take(pa.array(order))
    for k, s, e in rs:
        yield k, sorted_table.slice(s, e - s)


#: Footer key of a map file: JSON {partition: [row group, ...]}.
INDEX_KEY = "decant.partition_row_groups"
#: Map rows a writer holds before they go out as row groups (one per partition held): a unit's
#: map output is then one row group per partition unless it is larger than this.
BUFFER_BYTES = 64 << 20
#: On object storage a map file up to this size is read whole by each reducer (one GET, as one
#: file per partition cost); a larger one by ranges (its footer, then its partition's row groups).
WHOLE_READ_BYTES = 4 << 20


class MapWriter:
    """A global operator's map output for one unit: one Parquet file, row groups by partition."""

    def __init__(self, folder: str, num_partitions: int, buffer_bytes: int = BUFFER_BYTES) -> None:
        self.path, self.num_partitions, self.buffer_bytes = f"{folder}/map.parquet", num_partitions, buffer_bytes
        self.pending: list[tuple[pa.Table, np.ndarray]] = []  # rows and their partitions, scattered at a flush
        self.pending_bytes = 0
        self.schema: pa.Schema | None = None
        self.index: dict[int, list[int]] = {}
        self.row_groups = 0
        self.out: tuple[object, pq.ParquetWriter] | None = None

    def write(self, table: pa.Table | None) -> None:
        """Rows with an int `_partition` column in [0, num_partitions)."""
        if table is None or table.num_rows == 0:
            return
        part = table.column(PARTITION).to_numpy()
        bad = part[(part < 0) | (part >= self.num_partitions)]
        if len(bad):
            raise ValueError(f"map emitted partition {bad[0]} outside [0, {self.num_partitions})")
        rows = table.drop_columns([PARTITION])
        if self.schema is None:
            self.schema = rows.schema
        elif not rows.schema.equals(self.schema):
            if self.out is None:  # nothing written yet: a column null in the rows held may be typed now
                self.schema = pa.unify_schemas([self.schema, rows.schema], promote_options="permissive")
                self.pending = [(t.cast(self.schema), p) for t, p in self.pending]
            rows = rows.cast(self.schema)
        self.pending.append((rows, part))
        self.pending_bytes += rows.nbytes
        if self.pending_bytes >= self.buffer_bytes:
            self._flush()

    def _flush(self) -> None:
        """The rows held, one row group per partition, partitions ascending: scattered once for all
        the batches held (a scatter per batch cost a sort and a take per 256 documents)."""
        if not self.pending:
            return
        if self.out is None:
            fs = eio.fs_and_path(self.path)[0]
            fh = eio.open_output(self.path)
            self.out = (fh, pq.ParquetWriter(fh, self.schema, **intermediate_options(fs)))
        held = pa.concat_tables([t for t, _ in self.pending]) if len(self.pending) > 1 else self.pending[0][0]
        for p, rows in scatter_table(held, np.concatenate([p for _, p in self.pending])):
            self.out[1].write_table(rows, row_group_size=rows.num_rows)
            self.index.setdefault(p, []).append(self.row_groups)
            self.row_groups += 1
        self.pending, self.pending_bytes = [], 0

    def close(self) -> str | None:
        """The file written (None: the unit emitted no rows)."""
        self._flush()
        if self.out is None:
            return None
        fh, w = self.out
        w.add_key_value_metadata({INDEX_KEY: json.dumps({str(p): g for p, g in self.index.items()})})
        w.close()
        fh.close()
        self.out = None
        return self.path

    def commit(self, layout, unit: int) -> int:
        """Close, then rename the file to where the reduce of `layout` (a GlobalLayout) reads this
        unit's map output; returns how many files (0 or 1)."""
        path = self.close()
        if path is None:
            return 0
        eio.rename(path, layout.map_file(unit))
        return 1


def write_scattered(table: pa.Table, keys: np.ndarray, path: str) -> None:
    """A reduce task's rows scattered by key into ONE file (where a file per key was): a row group
    per key present, ascending, row order kept, the footer's index as in a map file. Read a key's
    rows of every task with `read_scattered` on the folder."""
    if table.num_rows == 0:
        return
    buf = pa.BufferOutputStream()
    index: dict[str, list[int]] = {}
    with pq.ParquetWriter(buf, table.schema, **intermediate_options(eio.fs_and_path(path)[0])) as w:
        for i, (k, rows) in enumerate(scatter_table(table, keys)):
            w.write_table(rows, row_group_size=rows.num_rows)
            index[str(k)] = [i]
        w.add_key_value_metadata({INDEX_KEY: json.dumps(index)})
    eio.write_bytes_atomic(buf.getvalue().to_pybytes(), path)


def read_scattered(folder: str, key: int, columns: list[str] | None = None) -> pa.Table | None:
    """The rows of `key` in every file `write_scattered` put in folder, in file name order."""
    return read_map_parts([MapPart(f, key, n) for f, n in map_listing(folder).items()], columns)


@dataclasses.dataclass(frozen=True)
class MapPart:
    """One unit's rows of one partition: the row groups of `partition` in a map file, or the whole
    file when `partition` is None (the layout before one file per unit: one file per partition).
    `size` (bytes, -1 unknown) comes from the listing: no request asks for it again."""

    path: str
    partition: int | None = None
    size: int = -1


def map_listing(folder: str) -> dict[str, int]:
    """The map files under `folder` (a GlobalLayout's map_dir) and their sizes, in name order."""
    fs, p = eio.fs_and_path(folder)
    if not eio.is_object_store(fs) and not fs.exists(p):
        return {}
    found = fs.find(p, detail=True)
    return {eio.unstrip(fs, f): int(found[f].get("size") or 0) for f in sorted(found)
            if f.endswith(".parquet") and "/.tmp-" not in f}


def read_map_parts(parts: list[MapPart], columns: list[str] | None = None) -> pa.Table | None:
    """The rows of some map parts as one table, in the parts' order (None when there are none)."""
    tables = [t for t in (_read_part(p, columns) for p in parts) if t is not None and t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _read_part(part: MapPart, columns: list[str] | None) -> pa.Table | None:
    if part.partition is None:
        return eio.read_parquet(part.path, columns)
    fs, p = eio.fs_and_path(part.path)
    if not eio.is_object_store(fs):
        with (pq.ParquetFile(p) if eio.is_local(fs) else pq.ParquetFile(fs.open(p, "rb"))) as pf:
            return _row_groups(pf, part.partition, columns)
    if 0 < part.size <= WHOLE_READ_BYTES:  # a ranged GET of it all: no HEAD asking for its size
        with pq.ParquetFile(pa.BufferReader(fs.cat_file(p, start=0, end=part.size))) as pf:
            return _row_groups(pf, part.partition, columns)
    # no read-ahead: the footer, then one coalesced ranged GET per row group of the partition
    size = {"size": part.size} if part.size >= 0 else {}
    with fs.open(p, "rb", cache_type="none", **size) as f, pq.ParquetFile(f, pre_buffer=True) as pf:
        return _row_groups(pf, part.partition, columns)


def _row_groups(pf: pq.ParquetFile, partition: int, columns: list[str] | None) -> pa.Table | None:
    index = json.loads((pf.metadata.metadata or {}).get(INDEX_KEY.encode(), b"{}"))
    groups = index.get(str(partition))
    return pf.read_row_groups(groups, columns=columns) if groups else None

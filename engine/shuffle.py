"""Scattering rows by a partition key: the one helper every shuffle uses, and the map writer.

`runs(keys)` sorts rows by key (stably, so rows keep their order inside a partition) and returns
the contiguous run of each key; the map writer, the reduce phases of line and MinHash dedup and the
components rounds all scatter through it.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine import io as eio

PARTITION = "_partition"


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


class MapWriter:
    """A global operator's map output for one shard: one Parquet file per partition, streamed."""

    def __init__(self, folder: str, num_partitions: int) -> None:
        self.folder, self.num_partitions = folder, num_partitions
        self.writers: dict[int, tuple[object, pq.ParquetWriter]] = {}
        self.files: dict[int, str] = {}

    def write(self, table: pa.Table | None) -> None:
        """Rows with an int `_partition` column in [0, num_partitions)."""
        if table is None or table.num_rows == 0:
            return
        part = table.column(PARTITION).to_numpy()
        for p, sub in scatter_table(table.drop_columns([PARTITION]), part):
            if not 0 <= p < self.num_partitions:
                raise ValueError(f"map emitted partition {p} outside [0, {self.num_partitions})")
            if p not in self.writers:
                path = f"{self.folder}/part-{p:05d}.parquet"
                eio.makedirs(self.folder)
                fs, pp = eio.fs_and_path(path)
                fh = fs.open(pp, "wb")
                self.writers[p] = (fh, pq.ParquetWriter(fh, sub.schema, compression="zstd"))
                self.files[p] = path
            w = self.writers[p][1]
            w.write_table(sub.cast(w.schema))

    def close(self) -> dict[int, str]:
        for fh, w in self.writers.values():
            w.close()
            fh.close()
        return self.files

    def commit(self, layout, shard: int) -> int:
        """Close, then rename each partition's file to where the reduce of `layout` (a
        GlobalLayout) reads this shard's part; returns how many files."""
        files = self.close()
        for p, path in files.items():
            eio.rename(path, layout.map_file(p, shard))
        return len(files)

"""The dedup index every output leaves for later jobs (OUT/index/<operator>/), and reading it back.

A global dedup step writes, in its reduce, what it decided about every document it saw, so that a
later job (`dedup.against`, `--against`) can drop what this output already holds without reading
its documents again:

    OUT/index/<operator>/meta.json                  format, operator, partitions, the parameters the
                                                    decisions depend on, refers_to; written last:
                                                    its presence means the index is whole
    OUT/index/<operator>/<table>/part-<q>.parquet   the rows of partition q of one table

Each table is partitioned by one uint64 column: a hash (line hash, band key, content hash;
partition = value mod P) or a document key (partition = fmix64 of its low 56 bits mod P, as
operators.dedup.components partitions nodes). The column is stored, so a job with another
partition count re-partitions an earlier index once (`align`), reading each part one time.

A row that maps to a kept document names it by (`kept_key`, `kept_in`): `kept_in` is null for
this output's own documents, else the identity (`output_identity`) of the earlier output that
holds it; `refers_to` in meta.json lists every output such rows may name, so a job reading this
index also finds those outputs' tables.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.io import exists, listdir_files, read_json, read_parquet, remove, write_bytes_atomic, write_json_atomic
from operators.dedup.components import node_partition

INDEX = "index"
FORMAT = 1
META = "meta.json"
KEPT_IN = "kept_in"
KEPT_ID = "kept_id"


@dataclasses.dataclass(frozen=True)
class IndexTable:
    """One table of an index: its folder name and the uint64 column its rows are partitioned by."""

    name: str
    column: str
    #: True: the column is a hash already (partition = value mod P); False: a document key.
    hashed: bool = True

    def partitions(self, values: np.ndarray, num_partitions: int) -> np.ndarray:
        v = np.asarray(values, dtype=np.uint64)
        if not self.hashed:
            return node_partition(v, num_partitions)
        return (v % np.uint64(num_partitions)).astype(np.int64)


def output_identity(path: str) -> str:
    """One spelling per output folder (an absolute, resolved local path; a URL without its trailing
    slash), so that `kept_in` values written by different jobs compare equal."""
    if "://" in path and not path.startswith("file://"):
        return path.rstrip("/")
    return os.path.realpath(path.removeprefix("file://"))


def index_root(out: str, operator: str) -> str:
    return f"{out.rstrip('/')}/{INDEX}/{operator}"


def part_path(root: str, table: str, q: int) -> str:
    return f"{root}/{table}/part-{q:05d}.parquet"


class IndexWriter:
    """The index of one operator in this job's output. `clear` first (a reduce redone after a kill
    starts over), parts from the reduce tasks, `write_meta` last."""

    def __init__(self, out: str, operator: str) -> None:
        self.root = index_root(out, operator)
        self.operator = operator

    def clear(self) -> None:
        remove(self.root)

    def write_meta(self, partitions: int, params: dict, refers_to: list[str], **extra) -> None:
        write_json_atomic({"format": FORMAT, "operator": self.operator, "partitions": partitions,
                           "params": params, "refers_to": list(refers_to), **extra}, f"{self.root}/{META}")


def write_part(root: str, table: IndexTable, q: int, rows: pa.Table) -> None:
    """Partition q of a table (nothing is written for no rows: a missing part reads as empty).
    Dictionaries only for the columns that are not 64-bit keys or hashes: on random uint64 one
    cost ~7x the write (360k bucket rows: 190 ms, 25 ms without) and made the file larger."""
    if rows.num_rows:
        buf = pa.BufferOutputStream()
        pq.write_table(rows, buf, compression="zstd", use_dictionary=[
            f.name for f in rows.schema if not (pa.types.is_integer(f.type) and f.type.bit_width == 64)])
        write_bytes_atomic(buf.getvalue().to_pybytes(), part_path(root, table.name, q))


class EarlierIndex:
    """One earlier output's index of one operator, checked against this job's parameters."""

    def __init__(self, path: str, operator: str, params: dict) -> None:
        self.path = path.rstrip("/")
        self.identity = output_identity(self.path)
        self.root = index_root(self.path, operator)
        meta_path = f"{self.root}/{META}"
        if not exists(meta_path):
            raise ValueError(f"{self.path} has no {INDEX}/{operator}/ (its job had no {operator} step, "
                             "was interrupted, or was made before outputs had an index)")
        self.meta = read_json(meta_path)
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.root} has index format {self.meta.get('format')}, this version reads {FORMAT}")
        theirs = self.meta.get("params", {})
        diff = [f"{k}: {theirs.get(k)!r} there, {v!r} here" for k, v in params.items() if theirs.get(k) != v]
        if diff:
            raise ValueError(f"the index in {self.root} was built with other parameters ({'; '.join(diff)}); "
                             "compare only outputs made with the same settings")
        self.partitions = int(self.meta["partitions"])
        self.refers_to = list(self.meta.get("refers_to", []))


class Chain:
    """The earlier outputs a job compares with: those it names (in the order given: name the oldest
    first, an earlier one wins a tie) and, after them, the outputs their rows refer to.

    `names[c]` is the identity of origin c: 0 is this job's own output, c >= 1 `indexes[c - 1]`;
    the first `named` indexes are the ones whose rows the job reads, the others only resolve
    documents that rows name (`kept_in`)."""

    def __init__(self, this_output: str, against: list[str], operator: str, params: dict) -> None:
        self.indexes = []
        for p in against:  # an output named twice is read once
            ix = EarlierIndex(p, operator, params)
            if all(ix.identity != other.identity for other in self.indexes):
                self.indexes.append(ix)
        self.named = len(self.indexes)
        self.names = [output_identity(this_output) if this_output else ""] + [ix.identity for ix in self.indexes]
        i = 0
        while i < len(self.indexes):
            for ref in self.indexes[i].refers_to:
                if ref not in self.names:
                    try:
                        self.indexes.append(EarlierIndex(ref, operator, params))
                    except ValueError as e:
                        raise ValueError(f"{self.indexes[i].path} refers to {ref}, which cannot be read: {e}") from None
                    self.names.append(ref)
            i += 1
        if len(self.names) > 127:
            raise ValueError(f"{len(self.names) - 1} earlier outputs: at most 126 can be compared with")

    @property
    def refers_to(self) -> list[str]:
        """The outputs this job's own index rows may name."""
        return self.names[1:]


def origin_codes(names: list[str], kept_in: pa.Array | pa.ChunkedArray, origin: int) -> np.ndarray:
    """Origin codes (positions in `names`) of rows read from origin `origin`'s index, whose null
    `kept_in` means that origin itself."""
    if isinstance(kept_in, pa.ChunkedArray):
        kept_in = kept_in.combine_chunks()
    enc = kept_in.cast(pa.string()).dictionary_encode()
    lookup = {n: c for c, n in enumerate(names)}
    values = enc.dictionary.to_pylist()
    missing = [v for v in values if v not in lookup]
    if missing:
        raise ValueError(f"index rows name {missing[0]}, which is not among the outputs compared with")
    lut = np.array([lookup[v] for v in values] + [origin], dtype=np.int64)
    return lut[enc.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)]


def kept_in_column(codes: np.ndarray, names: list[str]) -> pa.Array:
    """The `kept_in` strings of origin codes: null for 0 (this output), else the output's identity."""
    codes = np.asarray(codes, dtype=np.int64)
    idx = pa.array(codes.astype(np.int32), mask=codes == 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(names, pa.string())).cast(pa.string())


class Aligned:
    """For each earlier index, the files holding its rows of this job's partition q."""

    def __init__(self, sources: list[tuple[str, bool]], table: IndexTable) -> None:
        self.sources, self.table = sources, table

    def files(self, i: int, q: int) -> list[str]:
        root, own = self.sources[i]
        if own:  # built with this job's partition count: its own part
            path = part_path(root, self.table.name, q)
            return [path] if exists(path) else []
        return listdir_files(f"{root}/part-{q:05d}", ".parquet")


def align(indexes: list[EarlierIndex], table: IndexTable, num_partitions: int, workdir: str, parallel) -> Aligned:
    """Make every earlier index's table readable by this job's partitions: an index built with
    another partition count is re-partitioned into `workdir` (one task per source part)."""
    sources: list[tuple[str, bool]] = []
    tasks = []
    for i, ix in enumerate(indexes):
        if ix.partitions == num_partitions:
            sources.append((ix.root, True))
            continue
        dest = f"{workdir}/against-{i:03d}/{table.name}"
        remove(dest)
        sources.append((dest, False))
        tasks += [(part_path(ix.root, table.name, s), dest, s, num_partitions, table) for s in range(ix.partitions)]
    if tasks:
        parallel(repartition_task, tasks)
    return Aligned(sources, table)


def repartition_task(args: tuple) -> int:
    """One source part scattered to the new partitions: `dest/part-<q>/from-<source>.parquet`."""
    from engine.shuffle import scatter_table, write_work_table
    path, dest, source, num_partitions, table = args
    if not exists(path):
        return 0
    t = read_parquet(path)
    for q, rows in scatter_table(t, table.partitions(t.column(table.column).to_numpy(), num_partitions)):
        write_work_table(rows, f"{dest}/part-{q:05d}/from-{source:05d}.parquet")  # read by this job only
    return t.num_rows


def read_parts(files: list[str], columns: list[str] | None = None) -> pa.Table | None:
    """The rows of some part files as one table (None when there are none)."""
    tables = [read_parquet(f, columns) for f in files]
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else None

"""A global operator's map output: one file per unit whatever the partition count, and a reducer
reads exactly its partition's rows, in the order the one-file-per-partition layout gave them."""
from __future__ import annotations

import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import io as eio
from engine.reduce import GlobalContext
from engine.shuffle import INDEX_KEY, PARTITION, MapWriter, read_map_parts
from support import serial_map

PARTITIONS = 7


def context(root) -> GlobalContext:
    return GlobalContext(f"{root}/global", 3, PARTITIONS, serial_map, ["a", "b", "c"])


def batches(unit: int, n: int = 5, rows: int = 300) -> list[pa.Table]:
    """Map rows of one unit: a key that says where each row came from, strings, a partition
    (partition 5 never appears: a partition may be empty)."""
    rng = np.random.default_rng(unit)
    out = []
    for b in range(n):
        part = rng.choice([0, 1, 2, 3, 4, 6], size=rows, p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
        key = (unit << 32) + b * rows + np.arange(rows)
        lines = pa.array([f"u{unit} b{b} r{i}" for i in range(rows)])
        out.append(pa.table({"key": pa.array(key, pa.uint64()), "line": lines,
                             PARTITION: pa.array(part.astype(np.int32))}))
    return out


def old_layout_rows(units: dict[int, list[pa.Table]], p: int) -> pa.Table:
    """What the reduce read before: per unit ascending, that unit's rows of p in arrival order."""
    rows = [t.filter(pa.compute.equal(t.column(PARTITION), p)).drop_columns([PARTITION])
            for u in sorted(units) for t in units[u]]
    return pa.concat_tables(rows)


@pytest.mark.parametrize("buffer_bytes", [1 << 26, 4096], ids=["one-row-group-per-partition", "many-flushes"])
def test_a_reducer_reads_exactly_its_partition_in_the_old_order(tmp_path, buffer_bytes):
    ctx = context(tmp_path)
    units = {u: batches(u) for u in (2, 0, 1)}  # committed out of order, as workers finish
    for u, tables in units.items():
        w = MapWriter(f"{tmp_path}/staging/{u}", PARTITIONS, buffer_bytes=buffer_bytes)
        for t in tables:
            w.write(t)
        assert w.commit(ctx.layout, u) == 1
    files = eio.listdir_files(ctx.layout.map_dir)
    assert files == [ctx.layout.map_file(u) for u in (0, 1, 2)]  # one file per unit, nothing else
    for p in range(PARTITIONS):
        got = read_map_parts(ctx.map_parts(p))
        if p == 5:
            assert got is None
            continue
        assert got.equals(old_layout_rows(units, p)), p
        assert read_map_parts(ctx.map_parts(p), ["key"]).column_names == ["key"]
    meta = pq.ParquetFile(files[0])
    groups = meta.metadata.num_row_groups
    if buffer_bytes > 1 << 20:
        assert groups == 6  # the partitions present, each one row group
    else:
        assert groups > 6
    # the footer's index names every row group once: each holds one partition's rows only
    index = json.loads(meta.metadata.metadata[INDEX_KEY.encode()])
    assert sorted(g for gs in index.values() for g in gs) == list(range(groups))
    assert sorted(map(int, index)) == [0, 1, 2, 3, 4, 6]


def test_a_unit_without_rows_writes_nothing(tmp_path):
    ctx = context(tmp_path)
    w = MapWriter(f"{tmp_path}/staging/0", PARTITIONS)
    w.write(None)
    w.write(batches(0)[0].slice(0, 0))
    assert w.commit(ctx.layout, 0) == 0
    assert eio.listdir_files(ctx.layout.map_dir) == []
    assert all(read_map_parts(ctx.map_parts(p)) is None for p in range(PARTITIONS))


def test_a_partition_outside_the_range_is_an_error(tmp_path):
    w = MapWriter(f"{tmp_path}/staging/0", 3)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        w.write(batches(0)[0])


def test_map_output_of_the_layout_before_is_still_read(tmp_path):
    # a job started before one file per unit resumes: its finished units left one file per partition
    ctx = context(tmp_path)
    units = {0: batches(0, n=2), 1: batches(1, n=2)}
    w = MapWriter(f"{tmp_path}/staging/1", PARTITIONS)
    for t in units[1]:
        w.write(t)
    w.commit(ctx.layout, 1)
    for p in range(PARTITIONS):
        rows = old_layout_rows({0: units[0]}, p)
        if rows.num_rows:
            eio.write_parquet_atomic(rows, f"{ctx.layout.legacy_map_dir(p)}/shard-000000.parquet")
    for p in range(PARTITIONS):
        got = read_map_parts(ctx.map_parts(p))
        want = old_layout_rows(units, p)
        assert (got is None and want.num_rows == 0) or got.equals(want), p


@pytest.mark.parametrize("whole_read_bytes", [1 << 30, 0], ids=["read-whole", "read-by-ranges"])
def test_on_object_storage_a_reducer_reads_its_row_groups(s3_server, monkeypatch, whole_read_bytes):
    # a small map file is one GET per reducer; a big one its footer and its partition's ranges
    import engine.shuffle
    monkeypatch.setattr(engine.shuffle, "WHOLE_READ_BYTES", whole_read_bytes)
    root = s3_server.url(f"shuffle-{whole_read_bytes}")
    ctx = context(root)
    units = {u: batches(u, n=2) for u in (0, 1)}
    for u, tables in units.items():
        w = MapWriter(f"{root}/staging/{u}", PARTITIONS)
        for t in tables:
            w.write(t)
        w.commit(ctx.layout, u)
    assert s3_server.keys(f"shuffle-{whole_read_bytes}/global/map") == ["unit-000000.parquet", "unit-000001.parquet"]
    s3_server.take_requests()
    got = read_map_parts(ctx.map_parts(1))
    assert got.equals(old_layout_rows(units, 1))
    methods = collections.Counter(m for m, _ in s3_server.take_requests())
    if whole_read_bytes:  # the listing (sizes with it), then one GET per unit
        assert methods == {"GET": 1 + 2}
    else:  # the listing, then per unit its size, its footer and the partition's row group
        assert methods == {"GET": 1 + 2 * 2, "HEAD": 2}


def test_a_column_null_in_the_first_batches_and_typed_later(tmp_path):
    ctx = context(tmp_path)
    # the map rows held are not yet written: the file gets the typed column
    first = pa.table({"id": pa.nulls(3), "key": pa.array([1, 2, 3], pa.uint64()),
                      PARTITION: pa.array([0, 1, 0], pa.int32())})
    later = pa.table({"id": pa.array(["a", None]), "key": pa.array([4, 5], pa.uint64()),
                      PARTITION: pa.array([1, 0], pa.int32())})
    w = MapWriter(f"{tmp_path}/staging/0", PARTITIONS)
    w.write(first)
    w.write(later)
    w.commit(ctx.layout, 0)
    assert read_map_parts(ctx.map_parts(0)).to_pylist() == [{"id": None, "key": 1}, {"id": None, "key": 3},
                                                            {"id": None, "key": 5}]
    assert read_map_parts(ctx.map_parts(1)).to_pylist() == [{"id": None, "key": 2}, {"id": "a", "key": 4}]

"""A unit's run: the apply tables a worker keeps between the ranges of one file."""
from __future__ import annotations

import pyarrow as pa

from engine import io as eio
from engine import shard_task
from jobs.runjob import run_job


def test_a_units_apply_table_is_read_once_per_process_and_again_when_rewritten(tmp_path):
    class Dir:  # the two paths a global operator's folder names
        def apply_file(self, shard):
            return str(tmp_path / f"apply-{shard:06d}.parquet")

        apply_all_file = str(tmp_path / "apply-all.parquet")

    gdir = Dir()
    assert shard_task._apply_table(gdir, 0) is None
    eio.write_parquet_atomic(pa.table({"key": [1, 2]}), gdir.apply_all_file)
    every = shard_task._apply_table(gdir, 0)
    assert every.column("key").to_pylist() == [1, 2]
    assert shard_task._apply_table(gdir, 0) is every  # not read again
    eio.write_parquet_atomic(pa.table({"key": [3]}), gdir.apply_file(0))
    assert shard_task._apply_table(gdir, 0).column("key").to_pylist() == [3]  # its own table first
    eio.write_parquet_atomic(pa.table({"key": [4]}), gdir.apply_file(0))
    assert shard_task._apply_table(gdir, 0).column("key").to_pylist() == [4]


def test_a_job_run_in_process_keeps_no_apply_table_after_it(shards, tmp_path):
    job = {"pipeline": [{"line_dedup": {"partitions": 2}}]}
    run_job(job, inputs=[str(p) for p in shards], out=str(tmp_path / "out"), workers=1)
    assert shard_task._APPLY_CACHE == {}

"""Unique ids in documents/: a repeated `id` is rejected as `duplicate_id`, the first wins.

"First" is the smallest `_key` (shard index, then position in the shard), so the survivor is the
same whatever the executor, worker count or shard split. The engine adds this step to every job
and runs it at the job's first barrier (beside the first global operator, or at a barrier of its
own when the job has none). The map shuffles (id, key) by a hash of the id; each partition sorts
its rows by (id, key) and every row but the first of an id is a repeat; apply drops them.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.documents import ID, KEY
from engine.hashing import fmix64
from engine.operator import GlobalOperator, Params, Result
from engine.shuffle import PARTITION, MapPart, read_map_parts, scatter_table

REASON = "duplicate_id"
NAME = "unique_ids"


class UniqueIdsParams(Params):
    partitions: int = 16


class UniqueIds(GlobalOperator):
    name = NAME
    inputs = (ID,)
    Params = UniqueIdsParams

    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        ids = batch.column(ID).cast(pa.string())
        h = string_hashes(ids)
        return pa.table({ID: ids, KEY: batch.column(KEY),
                         PARTITION: pa.array((h % np.uint64(self.params.partitions)).astype(np.int32))})

    def reduce(self, ctx) -> dict:
        repeats = ctx.parallel(_repeats_in_partition, [ctx.map_parts(p) for p in range(ctx.num_partitions)])
        keys = np.concatenate([r for r in repeats if len(r)] or [np.zeros(0, np.uint64)])
        removed = pa.table({KEY: pa.array(np.sort(keys), pa.uint64())})
        for shard, rows in scatter_table(removed, (keys.astype(np.uint64) >> np.uint64(32)).astype(np.int64)
                                         if len(keys) else np.zeros(0, np.int64)):
            ctx.write_apply(shard, rows)
        return {"duplicate_ids": int(len(keys))}

    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        if table is None or table.num_rows == 0:
            return Result(batch)
        keys = batch.column(KEY).to_numpy(zero_copy_only=False)
        repeat = np.isin(keys, table.column(KEY).to_numpy())
        return Result(batch, ~repeat, np.where(repeat, REASON, None).astype(object))


def _repeats_in_partition(parts: list[MapPart]) -> np.ndarray:
    """Keys of the rows of one partition whose id an earlier key already has (null ids never repeat)."""
    t = read_map_parts(parts, [ID, KEY])
    if t is None:
        return np.zeros(0, np.uint64)
    t = t.filter(t.column(ID).is_valid())  # an array mask: an expression would load pyarrow's acero engine
    if t.num_rows == 0:
        return np.zeros(0, np.uint64)
    t = t.take(pc.sort_indices(t, sort_keys=[(ID, "ascending"), (KEY, "ascending")]))
    ids = t.column(ID).combine_chunks()
    same = np.zeros(t.num_rows, dtype=bool)
    if t.num_rows > 1:
        same[1:] = pc.equal(ids.slice(1), ids.slice(0, t.num_rows - 1)).to_numpy(zero_copy_only=False)
    return t.column(KEY).to_numpy()[same].astype(np.uint64)


def string_hashes(col: pa.Array) -> np.ndarray:
    """A 64-bit hash of every string of a string column (0 for a null), in a few numpy passes over
    the column's bytes (no Python string per row): the sum over its bytes of a mix of (position,
    byte), with the length, mixed again. It only spreads ids over partitions: a repeated id lands
    in one partition whatever the function, so any deterministic one gives the same repeats."""
    col = col.cast(pa.large_string())
    n = len(col)
    off = np.frombuffer(col.buffers()[1], dtype=np.int64, count=n + 1, offset=8 * col.offset)
    buf = col.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8)[off[0]:off[-1]] if buf is not None else np.zeros(0, np.uint8)
    lens = np.diff(off)
    starts = off[:-1] - off[0]
    h = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        if len(data):
            pos = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lens)
            terms = fmix64((pos.astype(np.uint64) << np.uint64(8)) | data)
            nonempty = lens > 0
            h[nonempty] = np.add.reduceat(terms, starts[nonempty])
        h ^= lens.astype(np.uint64) << np.uint64(40)
        fmix64(h)
    if col.null_count:
        h[~np.asarray(col.is_valid())] = 0
    return h

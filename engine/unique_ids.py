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
import xxhash

from engine.documents import ID, KEY
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
        h = np.fromiter((xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass")) if i is not None else 0
                         for i in ids.to_pylist()), dtype=np.uint64, count=len(ids))
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
    t = t.filter(pc.is_valid(pc.field(ID)))
    if t.num_rows == 0:
        return np.zeros(0, np.uint64)
    t = t.take(pc.sort_indices(t, sort_keys=[(ID, "ascending"), (KEY, "ascending")]))
    ids = t.column(ID).combine_chunks()
    same = np.zeros(t.num_rows, dtype=bool)
    if t.num_rows > 1:
        same[1:] = pc.equal(ids.slice(1), ids.slice(0, t.num_rows - 1)).to_numpy(zero_copy_only=False)
    return t.column(KEY).to_numpy()[same].astype(np.uint64)

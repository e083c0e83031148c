"""Global MinHash-LSH near-duplicate removal (GlobalOperator "minhash_dedup").

map (per shard, workers): signatures + band keys for the batch (operators.dedup.minhash); one row
    per (document, band): band uint16, band_key uint64, _key uint64, id (only on the band-0 row,
    so ids cross the shuffle once, not `bands` times), sig (only with verify);
    `_partition` = band_key mod partitions.
reduce (driver, once; the heavy work in `ctx.parallel` tasks, one per partition):
  1. buckets: per band partition, sort by (band, band_key, _key); every member of a bucket gets
     an edge to the bucket's smallest `_key` (with verify: only if the estimated Jaccard of the
     two signatures >= threshold). Edges go to the components folder partitioned by node;
     (key, id) pairs go to an id folder partitioned by node.
  2. components: Large-Star/Small-Star over the edge partitions (operators.dedup.components):
     no process holds all documents.
  3. select: per node partition, every non-root node is removed; its root (the component's
     smallest `_key`) is kept. Ids of removed docs are joined locally, then the removed rows are
     re-partitioned by root to join the kept id. Each task writes its part of
     duplicates.parquet and apply fragments grouped by shard mod partitions.
  The driver streams the parts into OUT/duplicates.parquet (id, cluster_id, kept_id) and writes
  one apply table per shard with removed documents (`_key`, minhash_cluster_id).
apply (per shard): drop the listed `_key`s with reason "near_duplicate".

The kept document of a cluster is always its smallest `_key`, so the survivors do not depend on
the worker count, the shard split into batches or the number of partitions.
"""
from __future__ import annotations

import time
from functools import cached_property
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from engine.documents import ID, KEY, texts
from engine.io import fs_and_path, listdir_files, read_parquet, remove, rename, write_parquet_atomic
from engine.operator import GlobalOperator, Params, Resources, Result, register
from engine.reduce import GlobalContext
from engine.shuffle import scatter_table
from operators.dedup import components as cc
from operators.dedup.minhash import band_keys, minhash_signatures, optimal_bands

REASON = "near_duplicate"
DUPLICATES_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("cluster_id", pa.uint64()),
                               pa.field("kept_id", pa.string())])


class MinHashParams(Params):
    threshold: float = Field(0.8, gt=0.0, lt=1.0)
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(112, ge=2, le=4096)
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    seed: int = Field(1, ge=0)
    partitions: int = Field(16, ge=1, le=65536)
    verify: bool = False

    @model_validator(mode="after")
    def _check(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they follow the threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


@register
class MinHashDedup(GlobalOperator):
    name: ClassVar[str] = "minhash_dedup"
    inputs: ClassVar[tuple[str, ...]] = ("id", "text")
    outputs: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=1024)
    Params: ClassVar[type[Params]] = MinHashParams

    @cached_property
    def band_rows(self) -> tuple[int, int]:
        p = self.params
        if p.bands is not None:
            return p.bands, p.rows
        return optimal_bands(p.threshold, p.num_perm)

    def setup(self) -> None:
        _ = self.band_rows

    # ------------------------------------------------------------------ map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        p = self.params
        bands, rows = self.band_rows
        sig, valid = minhash_signatures(texts(batch), p.num_perm, p.ngram, p.seed)
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            return None
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)[idx]
        bk = band_keys(sig[idx], bands, rows, p.seed)  # [n, bands]
        n = len(idx)
        doc = np.repeat(np.arange(n), bands)  # rows ordered doc-major
        band = np.tile(np.arange(bands, dtype=np.uint16), n)
        flat = bk.reshape(-1)
        ids = batch.column(ID).take(pa.array(idx))
        # the id only on the band-0 row of each document (it crosses the shuffle once)
        first = band == 0
        id_rows = ids.take(pa.array(doc, mask=~first))
        cols = {
            "band": pa.array(band),
            "band_key": pa.array(flat),
            KEY: pa.array(keys[doc]),
            ID: id_rows.cast(pa.string()),
            "_partition": pa.array((flat % np.uint64(p.partitions)).astype(np.int32)),
        }
        if p.verify:
            s = np.ascontiguousarray(sig[idx])
            arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * p.num_perm), n, [None, pa.py_buffer(s.tobytes())])
            cols["sig"] = arr.take(pa.array(doc))
        return pa.table(cols)

    # ------------------------------------------------------------------ reduce
    def reduce(self, ctx: GlobalContext) -> dict:
        p = self.params
        P = ctx.num_partitions
        work = f"{ctx.workdir.rstrip('/')}/minhash"
        remove(work)
        bands, rows = self.band_rows
        stats: dict = {"bands": bands, "rows": rows, "partitions": P}

        t0 = time.perf_counter()
        res = ctx.parallel(_bucket_task, [(ctx.map_files(q), work, q, P, p.threshold, p.verify) for q in range(P)])
        stats["documents"] = sum(r["documents"] for r in res)
        stats["band_rows"] = sum(r["rows"] for r in res)
        stats["candidate_pairs"] = sum(r["candidates"] for r in res)
        stats["edges"] = sum(r["edges"] for r in res)
        if p.verify:
            stats["verified_out"] = sum(r["verified_out"] for r in res)
        t1 = time.perf_counter()
        stats["seconds_buckets"] = round(t1 - t0, 3)

        out_dir, cstats = cc.connected_components(f"{work}/cc", P, ctx.parallel)
        stats["cc_rounds"] = cstats["rounds"]
        stats["cc_max_partition_edges"] = cstats["max_partition_edges"]
        t2 = time.perf_counter()
        stats["seconds_components"] = round(t2 - t1, 3)

        ctx.parallel(_select_a_task, [(out_dir, work, q, P) for q in range(P)])
        res = ctx.parallel(_select_b_task, [(work, q, P) for q in range(P)])
        stats["removed"] = sum(r["removed"] for r in res)
        stats["components"] = sum(r["components"] for r in res)

        # OUT/duplicates.parquet, streamed from the per-partition parts
        if ctx.output_dir:
            dest = f"{ctx.output_dir.rstrip('/')}/duplicates.parquet"
            tmp = f"{ctx.output_dir.rstrip('/')}/.tmp-duplicates.parquet"
            fs, tp = fs_and_path(tmp)
            fs.makedirs(tp.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(tp, "wb") as f, pq.ParquetWriter(f, DUPLICATES_SCHEMA, compression="zstd") as w:
                for path in listdir_files(f"{work}/dups", ".parquet"):
                    w.write_table(read_parquet(path, DUPLICATES_SCHEMA.names).cast(DUPLICATES_SCHEMA))
            rename(tmp, dest)
        # apply tables: fragments are grouped by shard mod P (P*P files, not shards*P); the driver
        # reads one group at a time (memory ~ removed/P rows) and writes each shard's table
        shards_with_removed = 0
        for g in range(P):
            files = listdir_files(f"{work}/apply/group-{g:05d}", ".parquet")
            if not files:
                continue
            t = pa.concat_tables([read_parquet(f) for f in files]).sort_by(KEY)
            shard = (t.column(KEY).to_numpy() >> np.uint64(32)).astype(np.int64)
            for sh, rows in scatter_table(t, shard):
                ctx.write_apply(sh, rows)
                shards_with_removed += 1
        stats["shards_with_removed"] = shards_with_removed
        t3 = time.perf_counter()
        stats["seconds_select"] = round(t3 - t2, 3)
        remove(work)  # intermediates only: duplicates.parquet and the apply tables are written
        return stats

    # ------------------------------------------------------------------ apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        if table is None or table.num_rows == 0 or batch.num_rows == 0:
            return Result(batch)
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
        removed = np.isin(keys, table.column(KEY).to_numpy())
        reasons = np.where(removed, REASON, None).astype(object)
        return Result(batch, ~removed, reasons)


# ---------------------------------------------------------------------- reduce tasks (picklable)

def _bucket_task(args: tuple) -> dict:
    """One band partition: buckets -> edges to each bucket's smallest key; ids by node."""
    files, work, q, P, threshold, verify = args
    out = {"documents": 0, "rows": 0, "candidates": 0, "edges": 0, "verified_out": 0}
    if not files:
        return out
    cols = ["band", "band_key", KEY, ID] + (["sig"] if verify else [])
    t = pa.concat_tables([read_parquet(f, cols) for f in files])
    out["rows"] = t.num_rows
    key = t.column(KEY).to_numpy().astype(np.uint64)
    # ids (band-0 rows carry them) to the node partitions
    has_id = np.asarray(t.column(ID).is_valid())
    idk = key[has_id]
    out["documents"] = len(idk)
    if len(idk):
        ids = t.column(ID).filter(pa.array(has_id))
        cc.write_by_node(pa.table({KEY: pa.array(idk), ID: ids}), idk, f"{work}/ids", q, P)
    band = t.column("band").to_numpy()
    bkey = t.column("band_key").to_numpy()
    order = np.lexsort((key, bkey, band))
    band, bkey, key = band[order], bkey[order], key[order]
    n = len(key)
    new = np.ones(n, dtype=bool)
    new[1:] = (band[1:] != band[:-1]) | (bkey[1:] != bkey[:-1])
    starts = np.flatnonzero(new)
    head = np.repeat(starts, np.diff(np.append(starts, n)))  # row of the bucket's smallest key
    member = ~new & (key != key[head])  # same doc twice in a bucket cannot happen; be safe
    out["candidates"] = int(np.count_nonzero(member))
    if verify and out["candidates"]:
        sigcol = t.column("sig").combine_chunks()
        width = sigcol.type.byte_width // 4
        sig = np.frombuffer(sigcol.buffers()[1], dtype=np.uint32, count=len(sigcol) * width,
                            offset=sigcol.offset * width * 4).reshape(-1, width)
        rows_m = np.flatnonzero(member)
        a = sig[order[rows_m]]
        b = sig[order[head[rows_m]]]
        ok = np.mean(a == b, axis=1) >= threshold
        out["verified_out"] = int(np.count_nonzero(~ok))
        member[rows_m[~ok]] = False
    src, dst = key[member], key[head[member]]
    if len(src):
        pairs = np.unique(np.stack([src, dst], axis=1), axis=0)
        src, dst = pairs[:, 0], pairs[:, 1]
    out["edges"] = len(src)
    cc.write_undirected(src, dst, cc.round_dir(f"{work}/cc", 0), q, P)
    return out


def _read_ids(work: str, q: int) -> tuple[np.ndarray, pa.Array]:
    files = listdir_files(f"{work}/ids/part-{q:05d}", ".parquet")
    if not files:
        return np.zeros(0, np.uint64), pa.array([], pa.string())
    t = pa.concat_tables([read_parquet(f, [KEY, ID]) for f in files])
    k = t.column(KEY).to_numpy().astype(np.uint64)
    order = np.argsort(k, kind="stable")
    return k[order], t.column(ID).combine_chunks().take(pa.array(order))


def _lookup(keys_sorted: np.ndarray, ids: pa.Array, want: np.ndarray) -> pa.Array:
    pos = np.searchsorted(keys_sorted, want)
    pos = np.minimum(pos, max(len(keys_sorted) - 1, 0))
    found = (keys_sorted[pos] == want) if len(keys_sorted) else np.zeros(len(want), bool)
    return ids.take(pa.array(pos, mask=~found))


def _select_a_task(args: tuple) -> int:
    """Node partition q: removed nodes with their id, re-partitioned by their root."""
    cc_dir, work, q, P = args
    u, root = cc.star_labels(cc_dir, q)
    if len(u) == 0:
        return 0
    keys, ids = _read_ids(work, q)
    uid = _lookup(keys, ids, u)
    cc.write_by_node(pa.table({KEY: pa.array(u), "root": pa.array(root), ID: uid}), root, f"{work}/removed", q, P)
    return len(u)


def _select_b_task(args: tuple) -> dict:
    """Root partition q: join the kept id; write duplicates part and per-shard apply fragments."""
    work, q, P = args
    files = listdir_files(f"{work}/removed/part-{q:05d}", ".parquet")
    if not files:
        return {"removed": 0, "components": 0}
    t = pa.concat_tables([read_parquet(f) for f in files])
    u = t.column(KEY).to_numpy().astype(np.uint64)
    root = t.column("root").to_numpy().astype(np.uint64)
    order = np.lexsort((u, root))
    u, root = u[order], root[order]
    uid = t.column(ID).combine_chunks().take(pa.array(order))
    keys, ids = _read_ids(work, q)
    kept = _lookup(keys, ids, root)
    write_parquet_atomic(pa.table({"id": uid, "cluster_id": pa.array(root), "kept_id": kept}, schema=DUPLICATES_SCHEMA),
                         f"{work}/dups/part-{q:05d}.parquet")
    removed = pa.table({KEY: pa.array(u), "minhash_cluster_id": pa.array(root)})
    for g, rows in scatter_table(removed, ((u >> np.uint64(32)) % np.uint64(P)).astype(np.int64)):
        write_parquet_atomic(rows, f"{work}/apply/group-{g:05d}/from-{q:05d}.parquet")
    return {"removed": len(u), "components": len(np.unique(root))}

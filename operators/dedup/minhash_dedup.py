"""Global MinHash-LSH near-duplicate removal (GlobalOperator "minhash_dedup").

map (per shard, workers): signatures + band keys for the batch (operators.dedup.minhash); one row
    per (document, band): band uint16, band_key uint64, _key uint64, and on the band-0 row only
    (so they cross the shuffle once, not `bands` times) the id and the weight (1 + the exact
    copies exact_dedup removed for it); sig with verify; `_partition` = band_key mod partitions.
reduce (driver, once; the heavy work in `ctx.parallel` tasks, one per partition, in
    operators.dedup.lsh_reduce): LSH buckets with the earlier outputs' index rows (`dedup.against`)
    -> edges to each bucket's head -> Large-Star/Small-Star connected components (no process holds
    all documents; a graph of up to 2M edges is solved in one task) -> per component the smallest node is kept: an earlier output's document
    whenever the component has one (earlier always wins), else this job's smallest `_key`; a kept
    document of this job gets its cluster size, an earlier one its win recorded.
  The driver streams the parts into OUT/duplicates.parquet (id, cluster_id, kept_id, kept_in) and
  writes one apply table per shard with decisions.
apply (per shard): drop the removed `_key`s as "near_duplicate" (or "near_duplicate_of_previous"
    when the kept document is an earlier output's; rejects carry kept_id and kept_in) and set
    `minhash_cluster_size` on every kept document.

The index (OUT/index/minhash_dedup/, see operators.dedup.index): `buckets` (band, band_key, the
kept document the bucket's smallest document of this job maps to, its signature with verify),
partitioned by band key; `kept` (this output's kept documents: key, id, cluster size) and `wins`
(earlier documents that won here), partitioned by document key. A later job reads buckets and kept,
never documents. Survivors do not depend on the worker count, the shard split into batches or the
number of partitions: the kept document of a cluster is always its smallest node.
"""
from __future__ import annotations

import time
from functools import cached_property
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from engine.documents import ID, KEY, TEXT, set_column
from engine.io import fs_and_path, listdir_files, read_parquet, remove, rename
from engine.operator import GlobalOperator, Params, Resources, Result, register
from engine.partition_count import DEFAULT_PARTITIONS, PartitionCount
from engine.reduce import GlobalContext
from engine.shuffle import PARTITION, read_scattered, scatter_table
from operators.dedup import components as cc
from operators.dedup.clusters import CLUSTER_SIZE, COPIES
from operators.dedup.index import KEPT_ID, KEPT_IN, Chain, IndexWriter, align
from operators.dedup.lsh_reduce import BUCKETS, DUPLICATES_SCHEMA, KEPT, WEIGHT, bucket_task, node_task, root_task
from operators.dedup.minhash import band_keys, minhash_signatures, optimal_bands

NAME = "minhash_dedup"
REASON = "near_duplicate"
REASON_PREVIOUS = "near_duplicate_of_previous"


class MinHashParams(Params):
    threshold: float = Field(0.8, gt=0.0, lt=1.0)
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(112, ge=2, le=4096)
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    seed: int = Field(1, ge=0)
    partitions: PartitionCount = DEFAULT_PARTITIONS
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
    name: ClassVar[str] = NAME
    inputs: ClassVar[tuple[str, ...]] = ("id", "text")
    outputs: ClassVar[tuple[str, ...]] = (CLUSTER_SIZE,)
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

    def index_params(self) -> dict:
        """What an earlier index must have been built with to be compared with."""
        p = self.params
        bands, rows = self.band_rows
        return {"threshold": p.threshold, "ngram": p.ngram, "num_perm": p.num_perm, "bands": bands, "rows": rows,
                "seed": p.seed}

    def chain(self, output_dir: str, against: list[str]) -> Chain:
        chain = Chain(output_dir, against, self.name, self.index_params())
        if self.params.verify:
            for ix in chain.indexes[:chain.named]:
                if not ix.meta.get("signatures"):
                    raise ValueError(f"the index in {ix.root} has no signatures (built without verify); "
                                     "run with verify: false or compare with an output made with verify")
        return chain

    def check_against(self, output: str) -> None:
        self.chain("", [output])

    # ------------------------------------------------------------------ map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        p = self.params
        bands, rows = self.band_rows
        sig, valid = minhash_signatures(batch.column(TEXT), p.num_perm, p.ngram, p.seed)
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            return None
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)[idx]
        if len(keys) and keys.max() > cc.KEY_MASK:
            raise ValueError(f"minhash_dedup: a document key above 2^{cc.KEY_BITS} (more than 2^24 shards)")
        bk = band_keys(sig[idx], bands, rows, p.seed)  # [n, bands]
        n = len(idx)
        doc = np.repeat(np.arange(n), bands)  # rows ordered doc-major
        band = np.tile(np.arange(bands, dtype=np.uint16), n)
        flat = bk.reshape(-1)
        # the id and weight only on the band-0 row of each document (they cross the shuffle once)
        first = pa.array(doc, mask=band != 0)
        weight = 1 + (batch.column(COPIES).to_numpy(zero_copy_only=False).astype(np.int64)[idx]
                      if COPIES in batch.schema.names else np.zeros(n, np.int64))
        cols = {
            "band": pa.array(band),
            "band_key": pa.array(flat),
            KEY: pa.array(keys[doc]),
            ID: batch.column(ID).take(pa.array(idx)).cast(pa.string()).take(first),
            WEIGHT: pa.array(weight).take(first),
            PARTITION: pa.array((flat % np.uint64(self.num_partitions())).astype(np.int32)),
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
        chain = self.chain(ctx.output_dir, ctx.against)
        index = IndexWriter(ctx.output_dir, self.name) if ctx.output_dir else None
        if index:
            index.clear()
        iroot = index.root if index else ""
        bands, rows = self.band_rows
        stats: dict = {"bands": bands, "rows": rows, "partitions": P}
        names = chain.names

        t0 = time.perf_counter()
        earlier = align(chain.indexes[:chain.named], BUCKETS, P, work, ctx.parallel)
        res = ctx.parallel(bucket_task, [
            (ctx.map_parts(q), [(i + 1, earlier.files(i, q)) for i in range(chain.named)], names, work, q, P,
             p.threshold, p.verify) for q in range(P)])
        for k in ("documents", "band_rows", "earlier_rows", "candidate_pairs", "candidates_previous", "edges"):
            stats[k] = sum(r[k] for r in res)
        if p.verify:
            stats["verified_out"] = sum(r["verified_out"] for r in res)
        t1 = time.perf_counter()
        stats["seconds_buckets"] = round(t1 - t0, 3)

        out_dir, cstats = cc.connected_components(f"{work}/cc", P, ctx.parallel, edges=stats["edges"])
        stats["cc_rounds"] = cstats["rounds"]
        stats["cc_max_partition_edges"] = cstats["max_partition_edges"]
        t2 = time.perf_counter()
        stats["seconds_components"] = round(t2 - t1, 3)

        kept = align(chain.indexes, KEPT, P, work, ctx.parallel)
        ctx.parallel(node_task, [(out_dir, work, q, P, names, bool(index)) for q in range(P)])
        res = ctx.parallel(root_task, [
            (out_dir, work, q, P, [(i + 1, kept.files(i, q)) for i in range(len(chain.indexes))], names, iroot)
            for q in range(P)])
        for k in ("removed", "removed_previous", "components", "kept"):
            stats[k] = sum(r[k] for r in res)

        if ctx.output_dir:  # OUT/duplicates.parquet, streamed from the per-partition parts
            dest = f"{ctx.output_dir.rstrip('/')}/duplicates.parquet"
            tmp = f"{ctx.output_dir.rstrip('/')}/.tmp-duplicates.parquet"
            fs, tp = fs_and_path(tmp)
            fs.makedirs(tp.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(tp, "wb") as f, pq.ParquetWriter(f, DUPLICATES_SCHEMA, compression="zstd") as w:
                for path in listdir_files(f"{work}/dups", ".parquet"):
                    w.write_table(read_parquet(path, DUPLICATES_SCHEMA.names).cast(DUPLICATES_SCHEMA))
            rename(tmp, dest)
        # apply tables: fragments are grouped by shard mod P (P files, row groups by group); the
        # driver reads one group at a time (memory ~ decisions/P rows) and writes each shard's table
        shards_with_decisions = 0
        for g in range(P):
            t = read_scattered(f"{work}/apply", g)
            if t is None:
                continue
            t = t.sort_by(KEY)
            shard = (t.column(KEY).to_numpy() >> np.uint64(32)).astype(np.int64)
            for sh, part in scatter_table(t, shard):
                ctx.write_apply(sh, part)
                shards_with_decisions += 1
        stats["shards_with_decisions"] = shards_with_decisions
        if index:
            index.write_meta(P, self.index_params(), chain.refers_to, signatures=p.verify, kept=stats["kept"])
        t3 = time.perf_counter()
        stats["seconds_select"] = round(t3 - t2, 3)
        remove(work)  # intermediates only: duplicates.parquet, the index and the apply tables are written
        return stats

    # ------------------------------------------------------------------ apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        n = batch.num_rows
        size = 1 + (batch.column(COPIES).to_numpy(zero_copy_only=False).astype(np.int64)
                    if COPIES in batch.schema.names else np.zeros(n, np.int64))
        if table is None or table.num_rows == 0 or n == 0:
            return Result(set_column(batch, CLUSTER_SIZE, pa.array(size)))
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
        tk = table.column(KEY).to_numpy()
        pos = np.minimum(np.searchsorted(tk, keys), len(tk) - 1)
        hit = tk[pos] == keys
        removed = hit & table.column("removed").to_numpy(zero_copy_only=False)[pos]
        root = hit & ~removed
        size[root] = table.column(CLUSTER_SIZE).to_numpy(zero_copy_only=False)[pos[root]]
        rows = pa.array(pos, mask=~removed)
        kept_id, kept_in = table.column(KEPT_ID).take(rows), table.column(KEPT_IN).take(rows)
        previous = removed & np.asarray(pc.is_valid(kept_in))
        reasons = np.where(previous, REASON_PREVIOUS, np.where(removed, REASON, None)).astype(object)
        return Result(set_column(batch, CLUSTER_SIZE, pa.array(size)), ~removed, reasons,
                      details={KEPT_ID: kept_id, KEPT_IN: kept_in})

"""Exact duplicates by a content hash of the normalised text (global operator "exact_dedup").

A document's key is xxh3-128 of its text normalised as line dedup normalises lines
(operators.text_norm: lowercase, digits -> 0, accents, punctuation and symbols removed) with all
whitespace collapsed, so copies that differ only in case, punctuation, digits or layout match. 128
bits because at 3 billion documents a 64-bit key would join two different texts with probability
~0.2. A document whose normalised text is empty is never a duplicate. Run before minhash_dedup,
exact copies never reach the MinHash stage.

map: (h1, h2, _key, id, _partition = h1 mod P), one row per document.
reduce: one task per partition sorts its rows by hash, then origin (earlier outputs in the order
  named, then this job), then `_key`. The first row of each hash wins: a document of this job is
  kept and the later copies go as `exact_duplicate`; a hash an earlier output already holds sends
  every copy here as `exact_duplicate_of_previous` of the document that output kept (nothing there
  is rewritten). The task writes this output's index part (each hash seen, with the document that
  keeps it), the wins of earlier documents, and per-shard decision pieces; one task per shard then
  merges a shard's pieces into its apply table.
apply: drops the removed rows (their rejects carry `kept_id` and `kept_in`) and gives every kept
  document the count of its copies removed here in the transient `_exact_copies` column, which
  minhash_dedup adds into `minhash_cluster_size`.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from engine.documents import ID, KEY, TEXT, set_column
from engine.io import read_parquet, remove
from engine.operator import GlobalOperator, Params, Resources, Result, register
from engine.partition_count import DEFAULT_PARTITIONS, PartitionCount
from engine.reduce import GlobalContext
from engine.shuffle import PARTITION, read_map_parts, write_work_table
from operators.dedup.clusters import COPIES, REMOVED
from operators.dedup.components import write_by_shard
from operators.dedup.index import (KEPT_ID, KEPT_IN, Chain, IndexTable, IndexWriter, align,
                                   kept_in_column, origin_codes, read_parts, write_part)
from operators.text_norm import normalize_lines_batch, normalize_text

NAME = "exact_dedup"
REASON = "exact_duplicate"
REASON_PREVIOUS = "exact_duplicate_of_previous"
#: Which text a hash is of: a later job refuses an index whose keys were made differently.
KEY_VERSION = "xxh3_128(text_norm, whitespace collapsed)"
HASHES = IndexTable("hashes", "h1")
WINS = IndexTable("wins", "h1")
HASH_SCHEMA = pa.schema([pa.field("h1", pa.uint64()), pa.field("h2", pa.uint64()),
                         pa.field(KEPT_ID, pa.string()), pa.field(KEPT_IN, pa.string())])
#: Earlier outputs' documents that won copies here: the document, the copies removed for it.
WINS_SCHEMA = pa.schema([pa.field("h1", pa.uint64()), pa.field(KEPT_IN, pa.string()), pa.field(KEPT_ID, pa.string()),
                         pa.field(REMOVED, pa.int64())])
APPLY_SCHEMA = pa.schema([pa.field(KEY, pa.uint64()), pa.field("removed", pa.bool_()),
                          pa.field("copies", pa.int64()), pa.field(KEPT_ID, pa.string()),
                          pa.field(KEPT_IN, pa.string())])
_MASK64 = (1 << 64) - 1


def content_hash(text: str | None) -> tuple[int, int] | None:
    """(high, low) 64-bit halves of the document's key; None when its normalised text is empty."""
    if not text:
        return None
    norm = " ".join(normalize_text(text).split())
    if not norm:
        return None
    h = xxhash.xxh3_128_intdigest(norm.encode("utf-8", "surrogatepass"))
    return h >> 64, h & _MASK64


def normalized_documents(texts: pa.Array) -> list[str]:
    """What `content_hash` hashes, for a whole text column (nulls as ""): the normalised lines of the
    batch, made in one pass, joined per document with their empty ones left out."""
    lines, nlines = normalize_lines_batch(pc.fill_null(texts, "").to_pylist())
    ends = np.cumsum(nlines).tolist()
    return [" ".join(filter(None, lines[a:b])) for a, b in zip([0, *ends[:-1]], ends)]


class ExactDedupParams(Params):
    partitions: PartitionCount = DEFAULT_PARTITIONS


@register
class ExactDedup(GlobalOperator):
    name = NAME
    inputs = (ID, TEXT)
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = ExactDedupParams

    def index_params(self) -> dict:
        return {"key": KEY_VERSION}

    def check_against(self, output: str) -> None:
        Chain("", [output], self.name, self.index_params())

    # ---------------------------------------------------------------- map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        norms = normalized_documents(batch.column(TEXT))
        rows = np.array([i for i, t in enumerate(norms) if t], dtype=np.int64)
        if len(rows) == 0:
            return None
        hashes = [xxhash.xxh3_128_intdigest(norms[i].encode("utf-8", "surrogatepass")) for i in rows.tolist()]
        h1 = np.fromiter((h >> 64 for h in hashes), dtype=np.uint64, count=len(rows))
        h2 = np.fromiter((h & _MASK64 for h in hashes), dtype=np.uint64, count=len(rows))
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)[rows]
        return pa.table({"h1": pa.array(h1), "h2": pa.array(h2), KEY: pa.array(keys),
                         ID: batch.column(ID).take(pa.array(rows)).cast(pa.string()),
                         PARTITION: pa.array((h1 % np.uint64(self.num_partitions())).astype(np.int32))})

    # ---------------------------------------------------------------- reduce
    def reduce(self, ctx: GlobalContext) -> dict:
        P = ctx.num_partitions
        work = f"{ctx.workdir}/exact_dedup"
        remove(work)
        chain = Chain(ctx.output_dir, ctx.against, self.name, self.index_params())
        index = IndexWriter(ctx.output_dir, self.name) if ctx.output_dir else None
        if index:
            index.clear()
        hashes = align(chain.indexes[:chain.named], HASHES, P, work, ctx.parallel)
        items = [(q, ctx.map_parts(q), [(i + 1, hashes.files(i, q)) for i in range(chain.named)], chain.names,
                  work, index.root if index else "") for q in range(P)]
        res = ctx.parallel(_partition_task, items)
        per_shard: dict[int, list[str]] = {}
        for r in res:
            for shard, path in r.pop("pieces"):
                per_shard.setdefault(shard, []).append(path)
        shard_items = [(s, sorted(per_shard[s]), work) for s in sorted(per_shard)]
        for (shard, _, _), path in zip(shard_items, ctx.parallel(_merge_shard, shard_items)):
            if not 0 <= shard < ctx.num_shards:
                raise ValueError(f"exact_dedup: key names shard {shard}, job has {ctx.num_shards}")
            ctx.write_apply(shard, read_parquet(path))
        stats = {k: sum(r[k] for r in res) for k in ("documents", "unique", "removed", "removed_previous")}
        if index:
            index.write_meta(P, self.index_params(), chain.refers_to, hashes=sum(r["indexed"] for r in res))
        remove(work)
        return stats

    # ---------------------------------------------------------------- apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        n = batch.num_rows
        copies = np.zeros(n, dtype=np.int64)
        if table is None or table.num_rows == 0:
            return Result(set_column(batch, COPIES, pa.array(copies)))
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
        tk = table.column(KEY).to_numpy()
        pos = np.minimum(np.searchsorted(tk, keys), len(tk) - 1)
        hit = tk[pos] == keys
        rows = pa.array(pos, mask=~hit)
        removed = hit & table.column("removed").to_numpy(zero_copy_only=False)[pos]
        copies[hit] = table.column("copies").to_numpy(zero_copy_only=False)[pos[hit]]
        kept_id = table.column(KEPT_ID).take(rows)
        kept_in = table.column(KEPT_IN).take(rows)
        previous = removed & np.asarray(pc.is_valid(kept_in))
        reasons = np.where(previous, REASON_PREVIOUS, np.where(removed, REASON, None)).astype(object)
        return Result(set_column(batch, COPIES, pa.array(copies)), ~removed, reasons,
                      details={KEPT_ID: kept_id, KEPT_IN: kept_in})


# -------------------------------------------------------------------- reduce tasks (module level)
def _partition_task(args: tuple) -> dict:
    """One hash partition: winners, this output's index part, earlier wins, per-shard pieces."""
    q, files, earlier, names, work, index_root = args
    out = {"documents": 0, "unique": 0, "removed": 0, "removed_previous": 0, "indexed": 0, "pieces": []}
    new = read_map_parts(files, ["h1", "h2", KEY, ID])
    if new is None:
        return out
    n = new.num_rows
    out["documents"] = n
    parts = [(new.column("h1").to_numpy(), new.column("h2").to_numpy(), np.full(n, len(names), np.int64),
              new.column(KEY).to_numpy(), new.column(ID).combine_chunks(), np.zeros(n, np.int64))]
    for origin, fl in earlier:
        t = read_parts(fl, HASH_SCHEMA.names)
        if t is None:
            continue
        codes = origin_codes(names, t.column(KEPT_IN), origin)
        # rank: the origin a row comes from (named order); kept: the output that holds its document
        parts.append((t.column("h1").to_numpy(), t.column("h2").to_numpy(), np.full(t.num_rows, origin, np.int64),
                      np.zeros(t.num_rows, np.uint64), t.column(KEPT_ID).combine_chunks(), codes))
    h1 = np.concatenate([p[0] for p in parts])
    h2 = np.concatenate([p[1] for p in parts])
    rank = np.concatenate([p[2] for p in parts])
    key = np.concatenate([p[3] for p in parts])
    ids = pa.concat_arrays([p[4].cast(pa.string()) for p in parts])
    kept_code = np.concatenate([p[5] for p in parts])
    order = np.lexsort((key, rank, h2, h1))
    h1, h2, rank, key, kept_code = h1[order], h2[order], rank[order], key[order], kept_code[order]
    ids = ids.take(pa.array(order))
    is_new = rank == len(names)
    first = np.ones(len(h1), dtype=bool)
    first[1:] = (h1[1:] != h1[:-1]) | (h2[1:] != h2[:-1])
    group = np.cumsum(first) - 1
    head = np.flatnonzero(first)[group]                   # row of each row's winner
    new_in_group = np.bincount(group, weights=is_new).astype(np.int64)
    winner_new = is_new[head]
    removed = is_new & (np.arange(len(h1)) != head)
    previous = removed & ~winner_new
    copies = np.where(is_new & ~removed, new_in_group[group] - 1, 0)
    win_ids = ids.take(pa.array(head))
    win_code = kept_code[head]
    out["unique"] = int(np.count_nonzero(first & (new_in_group[group] > 0)))
    out["removed"] = int(np.count_nonzero(removed))
    out["removed_previous"] = int(np.count_nonzero(previous))
    seen = first & (new_in_group[group] > 0)              # every hash this job saw, with its keeper
    out["indexed"] = int(np.count_nonzero(seen))
    if index_root:
        write_part(index_root, HASHES, q, pa.table({
            "h1": pa.array(h1[seen]), "h2": pa.array(h2[seen]), KEPT_ID: win_ids.filter(pa.array(seen)),
            KEPT_IN: kept_in_column(win_code[seen], names)}, schema=HASH_SCHEMA))
        won = first & ~is_new & (new_in_group[group] > 0)  # earlier documents that won here
        write_part(index_root, WINS, q, pa.table({
            "h1": pa.array(h1[won]), KEPT_IN: kept_in_column(kept_code[won], names),
            KEPT_ID: ids.filter(pa.array(won)), REMOVED: pa.array(new_in_group[group][won])}, schema=WINS_SCHEMA))
    decided = removed | (copies > 0)                      # kept documents without copies need no row
    kid = win_ids.filter(pa.array(decided))
    rows = pa.table({KEY: pa.array(key[decided]), "removed": pa.array(removed[decided]),
                     "copies": pa.array(copies[decided]),
                     KEPT_ID: pc.if_else(pa.array(removed[decided]), kid, pa.scalar(None, pa.string())),
                     KEPT_IN: kept_in_column(np.where(removed[decided], win_code[decided], 0), names)},
                    schema=APPLY_SCHEMA)
    out["pieces"] = write_by_shard(rows, key[decided], f"{work}/pieces", q)
    return out


def _merge_shard(args: tuple) -> str:
    """One shard's decisions, sorted by key, in one file."""
    shard, paths, work = args
    t = pa.concat_tables([read_parquet(p) for p in paths]).sort_by(KEY)
    path = f"{work}/merged/shard-{shard:06d}.parquet"
    write_work_table(t, path)
    return path


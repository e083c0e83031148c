"""CCNet line (paragraph) exact dedup across the whole corpus.

Every line of every document is normalised as CCNet does (lowercase, digits -> 0, accents and
punctuation stripped, whitespace collapsed; see `operators.text_norm`) and hashed to 64 bits
(xxh3). A line is removed everywhere except at its first occurrence in the corpus, "first" being
the smallest (`_key`, line index): a deterministic global order whatever the shard or partition
count. Repeats inside one document count too (the second copy goes).

Lines whose normalised form is shorter than `max(1, min_line_chars)` characters are never deduped
and stay as they are; in particular blank and punctuation-only lines are kept (CCNet would keep
only the corpus' first empty line, which mostly glues paragraphs together).

Phases:
- map: (hash uint64, key uint64, line uint32, _partition = hash % partitions) per eligible line.
- reduce: one task per partition sorts its rows by (hash, key, line); the first row of each hash
  is the owner, the others are removed occurrences; they are written as per-shard pieces under
  the workdir. Then one task per shard concatenates and sorts its pieces; the driver hands each
  shard's table, one at a time, to `ctx.write_apply`. No process ever holds more than one
  partition's hashes or one shard's removals.
- apply: drops those lines, rewrites `text` and records CCNet's
  `line_dedup_original_length`, `line_dedup_original_nlines`, `line_dedup_length`,
  `line_dedup_nlines` (characters and lines of `text` before and after, lines = `split("\\n")`).
  A document that had lines removed and is left with nothing but whitespace is dropped with
  reason "all_lines_duplicate".
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from engine.documents import KEY, TEXT, set_column
from engine.io import read_parquet, remove, write_parquet_atomic
from engine.operator import GlobalOperator, Params, Resources, Result, register
from engine.reduce import GlobalContext
from engine.shuffle import scatter_table
from operators.text_norm import normalize_lines

_h64 = xxhash.xxh3_64_intdigest

MAP_SCHEMA = pa.schema([
    pa.field("hash", pa.uint64()),
    pa.field("key", pa.uint64()),
    pa.field("line", pa.uint32()),
    pa.field("_partition", pa.int32()),
])
APPLY_SCHEMA = pa.schema([pa.field("key", pa.uint64()), pa.field("line", pa.uint32())])
REASON = "all_lines_duplicate"


def line_hashes(text: str, min_chars: int) -> tuple[list[int], list[int]]:
    """(line indices, hashes) of the lines of `text` that take part in dedup."""
    idx: list[int] = []
    hs: list[int] = []
    for i, line in enumerate(normalize_lines(text)):
        if len(line) >= min_chars:
            idx.append(i)
            hs.append(_h64(line.encode("utf-8")))
    return idx, hs


class LineDedupParams(Params):
    partitions: int = 16
    min_line_chars: int = 0


@register
class LineDedup(GlobalOperator):
    name = "line_dedup"
    inputs = (TEXT,)
    outputs = ("line_dedup_original_length", "line_dedup_original_nlines",
               "line_dedup_length", "line_dedup_nlines")
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = LineDedupParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        if self.params.partitions < 1:
            raise ValueError("line_dedup: partitions must be >= 1")
        if self.params.min_line_chars < 0:
            raise ValueError("line_dedup: min_line_chars must be >= 0")

    @property
    def _min_chars(self) -> int:
        return max(1, self.params.min_line_chars)

    # ---------------------------------------------------------------- map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
        texts = batch.column(TEXT).to_pylist()
        min_chars = self._min_chars
        all_h: list[int] = []
        all_l: list[int] = []
        counts = np.zeros(len(texts), dtype=np.int64)
        for j, t in enumerate(texts):
            if not t:
                continue
            idx, hs = line_hashes(t, min_chars)
            counts[j] = len(hs)
            all_l.extend(idx)
            all_h.extend(hs)
        h = np.array(all_h, dtype=np.uint64)
        part = (h % np.uint64(self.params.partitions)).astype(np.int32)
        return pa.table({
            "hash": pa.array(h, pa.uint64()),
            "key": pa.array(np.repeat(keys, counts), pa.uint64()),
            "line": pa.array(np.array(all_l, dtype=np.uint32), pa.uint32()),
            "_partition": pa.array(part, pa.int32()),
        }, schema=MAP_SCHEMA)

    # ---------------------------------------------------------------- reduce
    def reduce(self, ctx: GlobalContext) -> dict:
        root = f"{ctx.workdir}/line_dedup"
        remove(root)                                    # pieces of an interrupted earlier reduce
        items = [(p, ctx.map_files(p), root) for p in range(ctx.num_partitions)]
        part_stats = ctx.parallel(_reduce_partition, items)
        per_shard: dict[int, list[str]] = {}
        lines = uniques = removed = 0
        for st in part_stats:
            lines += st["lines"]
            uniques += st["unique"]
            removed += st["removed"]
            for shard, path in st["pieces"]:
                per_shard.setdefault(shard, []).append(path)
        shard_items = [(s, sorted(per_shard[s]), root) for s in sorted(per_shard)]
        merged = ctx.parallel(_merge_shard, shard_items)
        docs = 0
        for (shard, _, _), (path, ndocs) in zip(shard_items, merged):
            if not 0 <= shard < ctx.num_shards:
                raise ValueError(f"line_dedup: key names shard {shard}, job has {ctx.num_shards}")
            ctx.write_apply(shard, read_parquet(path))
            docs += ndocs
        return {"lines": lines, "unique_lines": uniques, "lines_removed": removed,
                "docs_with_removed_lines": docs, "shards_with_removals": len(shard_items)}

    # ---------------------------------------------------------------- apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        texts = batch.column(TEXT).to_pylist()
        n = len(texts)
        orig_len = np.fromiter((len(t) if t else 0 for t in texts), dtype=np.int64, count=n)
        orig_nl = np.fromiter((t.count("\n") + 1 if t else 0 for t in texts), dtype=np.int64, count=n)
        new_len = orig_len.copy()
        new_nl = orig_nl.copy()
        keep = np.ones(n, dtype=bool)
        changed = False
        if table is not None and table.num_rows:
            tk = table.column("key").to_numpy()
            tl = table.column("line").to_numpy()
            keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
            lo = np.searchsorted(tk, keys, "left")
            hi = np.searchsorted(tk, keys, "right")
            out = list(texts)
            for j in np.nonzero(hi > lo)[0]:
                t = texts[j]
                if not t:
                    continue
                drop = set(tl[lo[j]:hi[j]].tolist())
                kept = [ln for i, ln in enumerate(t.split("\n")) if i not in drop]
                nt = "\n".join(kept)
                out[j] = nt
                new_len[j] = len(nt)
                new_nl[j] = len(kept) if nt else 0
                if not nt.strip():
                    keep[j] = False
                changed = True
            if changed:
                batch = set_column(batch, TEXT, pa.array(out, pa.string()))
        batch = set_column(batch, "line_dedup_original_length", pa.array(orig_len, pa.int64()))
        batch = set_column(batch, "line_dedup_original_nlines", pa.array(orig_nl, pa.int64()))
        batch = set_column(batch, "line_dedup_length", pa.array(new_len, pa.int64()))
        batch = set_column(batch, "line_dedup_nlines", pa.array(new_nl, pa.int64()))
        reasons = np.where(keep, None, REASON).astype(object)
        return Result(batch, keep, reasons)


# -------------------------------------------------------------------- reduce tasks (module level)
def _reduce_partition(item: tuple[int, list[str], str]) -> dict:
    """Owners and removed occurrences of one hash partition, written as per-shard pieces."""
    p, files, root = item
    if not files:
        return {"lines": 0, "unique": 0, "removed": 0, "pieces": []}
    tables = [read_parquet(f, columns=["hash", "key", "line"]) for f in files]
    t = pa.concat_tables(tables)
    del tables
    h = t.column("hash").to_numpy()
    k = t.column("key").to_numpy()
    ln = t.column("line").to_numpy()
    del t
    order = np.lexsort((ln, k, h))
    h, k, ln = h[order], k[order], ln[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = h[1:] != h[:-1]
    unique = int(first.sum())
    rk, rl = k[~first], ln[~first]
    pieces = []
    removed = pa.table({"key": pa.array(rk, pa.uint64()), "line": pa.array(rl, pa.uint32())}, schema=APPLY_SCHEMA)
    for sh, rows in scatter_table(removed, (rk >> np.uint64(32)).astype(np.int64)):
        path = f"{root}/pieces/shard-{sh:06d}/part-{p:05d}.parquet"
        write_parquet_atomic(rows, path)
        pieces.append((sh, path))
    return {"lines": len(h), "unique": unique, "removed": len(rk), "pieces": pieces}


def _merge_shard(item: tuple[int, list[str], str]) -> tuple[str, int]:
    """One shard's removed (key, line) pairs, sorted, in one file; returns (path, docs touched)."""
    shard, paths, root = item
    t = pa.concat_tables([read_parquet(p) for p in paths])
    k = t.column("key").to_numpy()
    ln = t.column("line").to_numpy()
    o = np.lexsort((ln, k))
    k, ln = k[o], ln[o]
    path = f"{root}/merged/shard-{shard:06d}.parquet"
    write_parquet_atomic(pa.table({"key": pa.array(k, pa.uint64()), "line": pa.array(ln, pa.uint32())},
                                  schema=APPLY_SCHEMA), path)
    ndocs = len(np.unique(k)) if len(k) else 0
    return path, ndocs

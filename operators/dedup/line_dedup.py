"""CCNet line (paragraph) exact dedup across the whole corpus, and against earlier outputs.

Every line of every document is normalised as CCNet does (lowercase, digits -> 0, accents and
punctuation stripped, whitespace collapsed; see `operators.text_norm`) and hashed to 64 bits
(xxh3). A line is removed everywhere except at its first occurrence in the corpus, "first" being
the smallest (`_key`, line index): a deterministic global order whatever the shard or partition
count. Repeats inside one document count too (the second copy goes). A line that an earlier
output (`dedup.against`) already holds is removed everywhere here: the earlier output always wins.

Lines whose normalised form is shorter than `max(1, min_line_chars)` characters are never deduped
and stay as they are; in particular blank and punctuation-only lines are kept (CCNet would keep
only the corpus' first empty line, which mostly glues paragraphs together).

Phases:
- map: (hash uint64, key uint64, line uint32, _partition = hash % partitions) per eligible line,
  and the document's id on its first such line (ids cross the shuffle once).
- reduce: one task per partition sorts its rows and the earlier outputs' index rows of the same
  partition by (hash, origin, key, line); the first row of each hash owns it, the others are
  removed occurrences, written as per-shard pieces under the workdir, and every hash seen goes
  to this output's index with its owner. Then one task per shard sorts its pieces and picks, for
  each touched document, the owner it names in the rejects (an earlier output's when there is
  one); one task per id partition resolves those owners' ids. The driver hands each shard's
  table, one at a time, to `ctx.write_apply`. No process ever holds more than one partition's
  hashes or one shard's removals.
- apply: drops those lines, rewrites `text` and records CCNet's
  `line_dedup_original_length`, `line_dedup_original_nlines`, `line_dedup_length`,
  `line_dedup_nlines` (characters and lines of `text` before and after, lines = `split("\\n")`).
  A document that had lines removed and is left with nothing but whitespace is dropped with
  reason "all_lines_duplicate", or "all_lines_duplicate_of_previous" when some of its lines were
  in an earlier output; its reject names the owner of one removed line (`kept_id`, `kept_in`).

The index (OUT/index/line_dedup/, see operators.dedup.index): `lines` (hash, kept_key, kept_in:
the document that owns each line this job saw), partitioned by hash, and `docs` (kept_key, id of
every document with an eligible line), partitioned by document key.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from engine.documents import ID, KEY, TEXT, set_column
from engine.io import listdir_files, read_parquet, remove
from engine.operator import GlobalOperator, Params, Resources, Result, register
from engine.partition_count import DEFAULT_PARTITIONS, PartitionCount
from engine.reduce import GlobalContext
from engine.shuffle import PARTITION, read_map_parts, read_scattered, write_scattered, write_work_table
from operators.dedup.components import write_by_shard
from operators.dedup.index import (KEPT_ID, KEPT_IN, Chain, IndexTable, IndexWriter, align, kept_in_column,
                                   origin_codes, read_parts, write_part)
from operators.dedup.ranges import concat_ranges
from operators.text_norm import normalize_lines, normalize_lines_batch

_h64 = xxhash.xxh3_64_intdigest

NAME = "line_dedup"
MAP_SCHEMA = pa.schema([
    pa.field("hash", pa.uint64()),
    pa.field("key", pa.uint64()),
    pa.field("line", pa.uint32()),
    pa.field(ID, pa.string()),
    pa.field(PARTITION, pa.int32()),
])
APPLY_SCHEMA = pa.schema([pa.field("key", pa.uint64()), pa.field("line", pa.uint32()),
                          pa.field(KEPT_ID, pa.string()), pa.field(KEPT_IN, pa.string())])
REMOVED_SCHEMA = pa.schema([pa.field("key", pa.uint64()), pa.field("line", pa.uint32()),
                            pa.field("code", pa.int16()), pa.field("kept_key", pa.uint64())])
LINES = IndexTable("lines", "hash")
DOCS = IndexTable("docs", "kept_key", hashed=False)
LINES_SCHEMA = pa.schema([pa.field("hash", pa.uint64()), pa.field("kept_key", pa.uint64()),
                          pa.field(KEPT_IN, pa.string())])
DOCS_SCHEMA = pa.schema([pa.field("kept_key", pa.uint64()), pa.field(ID, pa.string())])
REASON = "all_lines_duplicate"
REASON_PREVIOUS = "all_lines_duplicate_of_previous"
#: How a line's hash is made: a later job refuses an index whose hashes were made differently.
KEY_VERSION = "xxh3_64(text_norm line)"


def line_hashes(text: str, min_chars: int) -> tuple[list[int], list[int]]:
    """(line indices, hashes) of the lines of `text` that take part in dedup: the definition `map`
    computes for a whole batch at once."""
    idx: list[int] = []
    hs: list[int] = []
    for i, line in enumerate(normalize_lines(text)):
        if len(line) >= min_chars:
            idx.append(i)
            hs.append(_h64(line.encode("utf-8")))
    return idx, hs


class LineDedupParams(Params):
    partitions: PartitionCount = DEFAULT_PARTITIONS
    min_line_chars: int = Field(0, ge=0)


@register
class LineDedup(GlobalOperator):
    name = NAME
    inputs = (TEXT,)
    outputs = ("line_dedup_original_length", "line_dedup_original_nlines",
               "line_dedup_length", "line_dedup_nlines")
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = LineDedupParams

    @property
    def _min_chars(self) -> int:
        return max(1, self.params.min_line_chars)

    def index_params(self) -> dict:
        return {"key": KEY_VERSION, "min_line_chars": self._min_chars}

    def check_against(self, output: str) -> None:
        Chain("", [output], self.name, self.index_params())

    # ---------------------------------------------------------------- map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
        lines, nlines = normalize_lines_batch(pc.fill_null(batch.column(TEXT), "").to_pylist())
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        rows = np.flatnonzero(lengths >= self._min_chars)
        first_line = np.cumsum(nlines) - nlines
        doc = np.repeat(np.arange(len(nlines)), nlines)[rows]
        counts = np.bincount(doc, minlength=len(nlines))
        all_l = rows - first_line[doc]
        h = np.fromiter(map(_h64, map(str.encode, [lines[i] for i in rows.tolist()])), dtype=np.uint64,
                        count=len(rows))
        part = (h % np.uint64(self.num_partitions())).astype(np.int32)
        # the id on each document's first eligible line only
        firsts = np.cumsum(counts) - counts
        doc_of_row = np.full(len(h), -1, dtype=np.int64)
        has = counts > 0
        doc_of_row[firsts[has]] = np.flatnonzero(has)
        ids = (batch.column(ID).cast(pa.string()).take(pa.array(doc_of_row, mask=doc_of_row < 0))
               if ID in batch.schema.names else pa.nulls(len(h), pa.string()))
        return pa.table({
            "hash": pa.array(h, pa.uint64()),
            "key": pa.array(np.repeat(keys, counts), pa.uint64()),
            "line": pa.array(np.array(all_l, dtype=np.uint32), pa.uint32()),
            ID: ids,
            PARTITION: pa.array(part, pa.int32()),
        }, schema=MAP_SCHEMA)

    # ---------------------------------------------------------------- reduce
    def reduce(self, ctx: GlobalContext) -> dict:
        root = f"{ctx.workdir}/line_dedup"
        remove(root)                                    # pieces of an interrupted earlier reduce
        P = ctx.num_partitions
        chain = Chain(ctx.output_dir, ctx.against, self.name, self.index_params())
        index = IndexWriter(ctx.output_dir, self.name) if ctx.output_dir else None
        if index:
            index.clear()
        iroot = index.root if index else ""
        earlier = align(chain.indexes[:chain.named], LINES, P, root, ctx.parallel)
        items = [(p, ctx.map_parts(p), [(i + 1, earlier.files(i, p)) for i in range(chain.named)], chain.names,
                  root, iroot, P) for p in range(P)]
        part_stats = ctx.parallel(_reduce_partition, items)
        per_shard: dict[int, list[str]] = {}
        totals = {"lines": 0, "unique_lines": 0, "lines_removed": 0, "lines_removed_previous": 0}
        for st in part_stats:
            for k in totals:
                totals[k] += st[k]
            for shard, path in st["pieces"]:
                per_shard.setdefault(shard, []).append(path)
        ctx.parallel(_merge_docs, [(root, iroot, r) for r in range(P)])
        shard_items = [(s, sorted(per_shard[s]), root, P) for s in sorted(per_shard)]
        merged = ctx.parallel(_merge_shard, shard_items)
        docs = align(chain.indexes, DOCS, P, root, ctx.parallel)
        ctx.parallel(_resolve_owners, [(root, r, [(i + 1, docs.files(i, r)) for i in range(len(chain.indexes))],
                                        chain.names) for r in range(P)])
        ndocs = 0
        for (shard, _, _, _), (path, n) in zip(shard_items, merged):
            if not 0 <= shard < ctx.num_shards:
                raise ValueError(f"line_dedup: key names shard {shard}, job has {ctx.num_shards}")
            ctx.write_apply(shard, _apply_table(read_parquet(path), root, shard))
            ndocs += n
        if index:
            index.write_meta(P, self.index_params(), chain.refers_to, lines=sum(st["indexed"] for st in part_stats))
        remove(root)
        return {**totals, "docs_with_removed_lines": ndocs, "shards_with_removals": len(shard_items)}

    # ---------------------------------------------------------------- apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        text = pc.fill_null(batch.column(TEXT), "")
        n = len(text)
        orig_len = np.asarray(pc.utf8_length(text), dtype=np.int64)
        orig_nl = np.where(orig_len > 0, np.asarray(pc.count_substring(text, "\n"), dtype=np.int64) + 1, 0)
        new_len = orig_len.copy()
        new_nl = orig_nl.copy()
        keep = np.ones(n, dtype=bool)
        details = None
        previous = np.zeros(n, dtype=bool)
        if table is not None and table.num_rows:
            tk = table.column("key").to_numpy()
            tl = table.column("line").to_numpy()
            keys = batch.column(KEY).to_numpy(zero_copy_only=False).astype(np.uint64)
            lo = np.searchsorted(tk, keys, "left")
            hi = np.searchsorted(tk, keys, "right")
            touched = np.flatnonzero((hi > lo) & (orig_len > 0))
            if len(touched):
                col = batch.column(TEXT)
                nt, kept_lines = _drop_lines(col.take(pa.array(touched)), lo[touched], hi[touched], tl)
                new_len[touched] = np.asarray(pc.utf8_length(nt), dtype=np.int64)
                new_nl[touched] = np.where(new_len[touched] > 0, kept_lines, 0)
                keep[touched] = ~np.asarray(pc.match_substring_regex(nt, _BLANK), dtype=bool)
                at = np.arange(n, dtype=np.int64)
                at[touched] = n + np.arange(len(touched))
                merged = pa.concat_arrays([col.cast(pa.string()), nt.cast(pa.string())]).take(pa.array(at))
                batch = set_column(batch, TEXT, merged)
            # a document's owner reference is on its first row of the table
            ref = pa.array(np.minimum(lo, max(table.num_rows - 1, 0)), mask=hi <= lo)
            details = {KEPT_ID: table.column(KEPT_ID).take(ref), KEPT_IN: table.column(KEPT_IN).take(ref)}
            previous = np.asarray(pc.is_valid(details[KEPT_IN]))
        batch = set_column(batch, "line_dedup_original_length", pa.array(orig_len, pa.int64()))
        batch = set_column(batch, "line_dedup_original_nlines", pa.array(orig_nl, pa.int64()))
        batch = set_column(batch, "line_dedup_length", pa.array(new_len, pa.int64()))
        batch = set_column(batch, "line_dedup_nlines", pa.array(new_nl, pa.int64()))
        reasons = np.where(keep, None, np.where(previous, REASON_PREVIOUS, REASON)).astype(object)
        return Result(batch, keep, reasons, details=details)


# Python's str.isspace() set, so that "nothing but whitespace" means what `not text.strip()` means
# (RE2's \\s is ASCII only); tests check it against str.isspace over every code point.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_BLANK = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]*$"


def _drop_lines(text: pa.Array, lo: np.ndarray, hi: np.ndarray, tl: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Each document of `text` without the lines `tl[lo[j]:hi[j]]` (indexes into `split("\\n")`),
    joined back with "\\n", all documents at once; and how many lines each kept."""
    parts = pc.split_pattern(text, "\n")
    offsets = np.asarray(parts.offsets, dtype=np.int64)
    offsets -= offsets[0]
    nlines = np.diff(offsets)
    doc = np.repeat(np.arange(len(lo)), hi - lo)
    line = tl[concat_ranges(lo, hi)].astype(np.int64)
    ok = line < nlines[doc]                           # a line the document does not have drops nothing
    drop = np.zeros(offsets[-1], dtype=bool)
    drop[offsets[doc[ok]] + line[ok]] = True
    kept = np.diff(np.concatenate([[0], np.cumsum(~drop)])[offsets])
    values = parts.flatten().filter(pa.array(~drop))
    new_offsets = pa.array(np.concatenate([[0], np.cumsum(kept)]).astype(parts.offsets.type.to_pandas_dtype()))
    joined = pc.binary_join(type(parts).from_arrays(new_offsets, values), "\n")
    return joined, kept


# -------------------------------------------------------------------- reduce tasks (module level)
def _reduce_partition(item: tuple) -> dict:
    """Owners and removed occurrences of one hash partition: this output's index part, the ids of
    its documents by id partition, the removed occurrences as per-shard pieces."""
    p, files, earlier, names, root, iroot, P = item
    out = {"lines": 0, "unique_lines": 0, "lines_removed": 0, "lines_removed_previous": 0, "indexed": 0,
           "pieces": []}
    t = read_map_parts(files, ["hash", "key", "line", ID])
    if t is None:
        return out
    has_id = np.asarray(t.column(ID).is_valid())
    docs = pa.table({"kept_key": t.column("key").filter(pa.array(has_id)), ID: t.column(ID).filter(pa.array(has_id))},
                    schema=DOCS_SCHEMA)
    write_scattered(docs, DOCS.partitions(docs.column("kept_key").to_numpy(), P), f"{root}/docs/from-{p:05d}.parquet")
    n = t.num_rows
    h = [t.column("hash").to_numpy()]
    k = [t.column("key").to_numpy()]
    ln = [t.column("line").to_numpy()]
    rank = [np.full(n, len(names), np.int64)]      # this job's rows sort after every earlier output's
    code = [np.zeros(n, np.int64)]                # the output holding each row's document
    del t
    for origin, fl in earlier:
        e = read_parts(fl, LINES_SCHEMA.names)
        if e is None:
            continue
        h.append(e.column("hash").to_numpy())
        k.append(e.column("kept_key").to_numpy())
        ln.append(np.zeros(e.num_rows, np.uint32))
        rank.append(np.full(e.num_rows, origin, np.int64))
        code.append(origin_codes(names, e.column(KEPT_IN), origin))
    h, k, ln, rank, code = (np.concatenate(x) for x in (h, k, ln, rank, code))
    order = np.lexsort((ln, k, rank, h))
    h, k, ln, rank, code = h[order], k[order], ln[order], rank[order], code[order]
    is_new = rank == len(names)
    first = np.ones(len(h), dtype=bool)
    first[1:] = h[1:] != h[:-1]
    head = np.flatnonzero(first)[np.cumsum(first) - 1]  # each row's owner
    seen = first & np.logical_or.reduceat(is_new, np.flatnonzero(first))[np.cumsum(first) - 1]
    removed = is_new & ~first
    previous = removed & ~is_new[head]
    out["lines"] = n
    out["unique_lines"] = int(np.count_nonzero(first & is_new))
    out["lines_removed"] = int(np.count_nonzero(removed))
    out["lines_removed_previous"] = int(np.count_nonzero(previous))
    out["indexed"] = int(np.count_nonzero(seen))
    if iroot:
        write_part(iroot, LINES, p, pa.table({"hash": pa.array(h[seen]), "kept_key": pa.array(k[seen]),
                                              KEPT_IN: kept_in_column(code[seen], names)}, schema=LINES_SCHEMA))
    rk = k[removed]
    pieces = pa.table({"key": pa.array(rk), "line": pa.array(ln[removed]),
                       "code": pa.array(code[head[removed]].astype(np.int16)),
                       "kept_key": pa.array(k[head[removed]])}, schema=REMOVED_SCHEMA)
    out["pieces"] = write_by_shard(pieces, rk, f"{root}/pieces", p)
    return out


def _merge_docs(item: tuple) -> int:
    """Id partition r of this output's `docs` index table."""
    root, iroot, r = item
    t = read_scattered(f"{root}/docs", r)
    if t is None or not iroot:
        return 0
    write_part(iroot, DOCS, r, t.sort_by("kept_key"))
    return t.num_rows


def _merge_shard(item: tuple) -> tuple[str, int]:
    """One shard's removed (key, line) pairs, sorted, in one file; per touched document the owner
    its reject would name (a line an earlier output owns first), sent to the owner's id partition.
    Returns (path, docs touched)."""
    shard, paths, root, P = item
    t = pa.concat_tables([read_parquet(p) for p in paths])
    k = t.column("key").to_numpy()
    ln = t.column("line").to_numpy()
    code = t.column("code").to_numpy().astype(np.int64)
    owner = t.column("kept_key").to_numpy()
    o = _order_by_key_line(k, ln)
    k, ln, code, owner = k[o], ln[o], code[o], owner[o]
    path = f"{root}/merged/shard-{shard:06d}.parquet"
    write_work_table(pa.table({"key": pa.array(k), "line": pa.array(ln)}), path)
    starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
    earliest_prev = np.minimum.reduceat(np.where(code != 0, np.arange(len(k)), len(k)), starts)
    ref = np.where(earliest_prev < len(k), earliest_prev, starts)
    refs = pa.table({"key": pa.array(k[ref]), "code": pa.array(code[ref]), "kept_key": pa.array(owner[ref])})
    write_scattered(refs, DOCS.partitions(owner[ref], P), f"{root}/refs/shard-{shard:06d}.parquet")
    return path, len(starts)


def _order_by_key_line(k: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """The (key, line) order: one stable argsort of (ordinal << 32 | line) when every key is of
    one file (a shard's always are), several times faster than the two-key lexsort."""
    if len(k) and k.min() >> np.uint64(32) == k.max() >> np.uint64(32):
        return np.argsort(((k & np.uint64(0xFFFFFFFF)) << np.uint64(32)) | ln.astype(np.uint64), kind="stable")
    return np.lexsort((ln, k))


def _resolve_owners(item: tuple) -> int:
    """Id partition r: the ids of the owners the touched documents name, back to their shards."""
    root, r, earlier_docs, names = item
    refs = read_scattered(f"{root}/refs", r)
    if refs is None:
        return 0
    code = refs.column("code").to_numpy()
    owner = refs.column("kept_key").to_numpy()
    at = np.full(len(code), -1, dtype=np.int64)
    sources, offset = [], 0
    for origin, files in [(0, None), *earlier_docs]:  # this output's own docs: scattered by _reduce_partition
        sel = np.flatnonzero(code == origin)
        d = None if not len(sel) else (read_scattered(f"{root}/docs", r, DOCS_SCHEMA.names) if files is None
                                       else read_parts(files, DOCS_SCHEMA.names))
        if d is None:
            continue
        dk = d.column("kept_key").to_numpy()
        o = np.argsort(dk, kind="stable")
        pos = np.minimum(np.searchsorted(dk[o], owner[sel]), len(dk) - 1)
        found = dk[o][pos] == owner[sel]
        at[sel[found]] = offset + o[pos[found]]
        sources.append(d.column(ID).combine_chunks().cast(pa.string()))
        offset += d.num_rows
    ids = (pa.concat_arrays(sources) if sources else pa.array([], pa.string())).take(pa.array(at, mask=at < 0))
    keys = refs.column("key").to_numpy()
    out = pa.table({"key": pa.array(keys), KEPT_ID: ids, KEPT_IN: kept_in_column(code, names)})
    write_by_shard(out, keys, f"{root}/owners", r)
    return len(keys)


def _apply_table(removed: pa.Table, root: str, shard: int) -> pa.Table:
    """A shard's removed lines, sorted by (key, line), with each document's owner reference on its
    first row."""
    owners = read_parts(listdir_files(f"{root}/owners/shard-{shard:06d}", ".parquet"))
    k = removed.column("key").to_numpy()
    first = np.concatenate([[True], k[1:] != k[:-1]]) if len(k) else np.zeros(0, bool)
    at = np.full(len(k), -1, dtype=np.int64)
    kept_id, kept_in = pa.nulls(0, pa.string()), pa.nulls(0, pa.string())
    if owners is not None:
        owners = owners.sort_by("key")
        ok = owners.column("key").to_numpy()
        pos = np.minimum(np.searchsorted(ok, k), len(ok) - 1)
        hit = first & (ok[pos] == k)
        at[hit] = pos[hit]
        kept_id, kept_in = owners.column(KEPT_ID).combine_chunks(), owners.column(KEPT_IN).combine_chunks()
    take = pa.array(np.maximum(at, 0), mask=at < 0)
    return pa.table({"key": removed.column("key"), "line": removed.column("line"),
                     KEPT_ID: kept_id.take(take) if len(kept_id) else pa.nulls(len(k), pa.string()),
                     KEPT_IN: kept_in.take(take) if len(kept_in) else pa.nulls(len(k), pa.string())},
                    schema=APPLY_SCHEMA)

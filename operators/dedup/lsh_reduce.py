"""The reduce of minhash_dedup, as tasks over partitions (module-level: picklable for any executor).

1. `bucket_task` (per band partition): this job's band rows and the earlier outputs' index rows
   of the same partition sorted by (band, band_key, origin, node); a bucket's head is its first
   row (an earlier output's document when one is there, else this job's smallest `_key`); every
   document of this job in the bucket gets an edge to the head (with verify: only if the
   estimated Jaccard of the signatures >= threshold). Edges go to the components folder by node;
   (node, id, weight) and each bucket's own head of this job (for the index) by node too.
2. connected components (operators.dedup.components) over the edges.
3. `node_task` (per node partition, its star labels read once): each of this job's bucket heads
   mapped to the kept document of its component, sent by band key for the index `buckets`; this
   job's non-root nodes with id and weight, sent to their root's partition.
4. `root_task`: the index `buckets` partition sorted into place, and `select_kept_task` (per
   root partition): kept ids (an earlier root's from its output's `kept` table), cluster sizes,
   the duplicates part, the index `kept` and `wins` parts, apply fragments grouped by shard mod P.

Nodes: a document of this job is its `_key` with the top bit set (`NEW`); a document an earlier
output kept is its key there with the origin (operators.dedup.index.Chain) in the top byte, so
earlier documents are always the smaller nodes and win their components.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.documents import ID, KEY
from engine.shuffle import read_map_parts, read_scattered, write_scattered, write_work_table
from operators.dedup import components as cc
from operators.dedup.clusters import CLUSTER_SIZE, REMOVED
from operators.dedup.index import KEPT_ID, KEPT_IN, IndexTable, kept_in_column, origin_codes, read_parts, write_part

DUPLICATES_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("cluster_id", pa.uint64()),
                               pa.field(KEPT_ID, pa.string()), pa.field(KEPT_IN, pa.string())])
BUCKETS = IndexTable("buckets", "band_key")
KEPT = IndexTable("kept", "kept_key", hashed=False)
WINS = IndexTable("wins", "kept_key", hashed=False)
KEPT_SCHEMA = pa.schema([pa.field("kept_key", pa.uint64()), pa.field(ID, pa.string()),
                         pa.field(CLUSTER_SIZE, pa.int64())])
WINS_SCHEMA = pa.schema([pa.field("kept_key", pa.uint64()), pa.field(KEPT_IN, pa.string()),
                         pa.field(KEPT_ID, pa.string()), pa.field(REMOVED, pa.int64())])
APPLY_SCHEMA = pa.schema([pa.field(KEY, pa.uint64()), pa.field("removed", pa.bool_()),
                          pa.field(CLUSTER_SIZE, pa.int64()), pa.field(KEPT_ID, pa.string()),
                          pa.field(KEPT_IN, pa.string())])
#: Nodes of this job's documents: `_key` with the top bit set (above every earlier output's node).
NEW = np.uint64(1 << 63)
NODE, WEIGHT = "node", "weight"


def _signatures(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size binary column of uint32 signatures as a [rows, num_perm] array."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    width = col.type.byte_width // 4
    return np.frombuffer(col.buffers()[1], dtype=np.uint32, count=len(col) * width,
                         offset=col.offset * width * 4).reshape(-1, width)


def bucket_task(args: tuple) -> dict:
    """One band partition: buckets (with the earlier outputs' rows) -> edges to each bucket's head;
    ids and weights by node; this job's own head of each bucket (for the index) by node."""
    files, earlier, names, work, q, P, threshold, verify = args
    out = {"documents": 0, "band_rows": 0, "earlier_rows": 0, "candidate_pairs": 0, "candidates_previous": 0,
           "edges": 0, "verified_out": 0}
    t = read_map_parts(files)
    if t is None:
        return out
    out["band_rows"] = t.num_rows
    node = t.column(KEY).to_numpy().astype(np.uint64) | NEW
    has_id = np.asarray(t.column(ID).is_valid())
    out["documents"] = int(np.count_nonzero(has_id))
    if out["documents"]:
        w = (t.column(WEIGHT).filter(pa.array(has_id)) if WEIGHT in t.schema.names
             else pa.array(np.ones(out["documents"], np.int64)))
        idn = node[has_id]
        cc.write_by_node(pa.table({NODE: pa.array(idn), ID: t.column(ID).filter(pa.array(has_id)),
                                   WEIGHT: w.cast(pa.int64())}), idn, f"{work}/ids", q, P)
    n_new = t.num_rows
    band = [t.column("band").to_numpy().astype(np.uint16)]
    bkey = [t.column("band_key").to_numpy()]
    nodes = [node]
    rank = [np.full(n_new, len(names), np.int64)]  # this job's rows sort after every earlier output's
    sigs = [_signatures(t.column("sig"))] if verify else []
    columns = ["band", "band_key", "kept_key", KEPT_IN] + (["sig"] if verify else [])
    for origin, fl in earlier:
        e = read_parts(fl, columns)
        if e is None:
            continue
        out["earlier_rows"] += e.num_rows
        code = origin_codes(names, e.column(KEPT_IN), origin).astype(np.uint64)
        band.append(e.column("band").to_numpy().astype(np.uint16))
        bkey.append(e.column("band_key").to_numpy())
        nodes.append((code << np.uint64(cc.KEY_BITS)) | e.column("kept_key").to_numpy().astype(np.uint64))
        rank.append(np.full(e.num_rows, origin, np.int64))
        if verify:
            sigs.append(_signatures(e.column("sig")))
    del t
    band, bkey, node, rank = (np.concatenate(x) for x in (band, bkey, nodes, rank))
    order = np.lexsort((node, rank, bkey, band))
    band, bkey, node, rank = band[order], bkey[order], node[order], rank[order]
    n = len(node)
    is_new = rank == len(names)
    start = np.ones(n, dtype=bool)
    start[1:] = (band[1:] != band[:-1]) | (bkey[1:] != bkey[:-1])
    starts = np.flatnonzero(start)
    head = np.repeat(starts, np.diff(np.append(starts, n)))  # each row's bucket head
    member = is_new & ~start & (node != node[head])
    out["candidate_pairs"] = int(np.count_nonzero(member))
    sig = np.concatenate(sigs)[order] if verify else None
    if verify and out["candidate_pairs"]:
        rows_m = np.flatnonzero(member)
        ok = np.mean(sig[rows_m] == sig[head[rows_m]], axis=1) >= threshold
        out["verified_out"] = int(np.count_nonzero(~ok))
        member[rows_m[~ok]] = False
    out["candidates_previous"] = int(np.count_nonzero(member & ~is_new[head]))
    src, dst = node[member], node[head[member]]
    if len(src):
        pairs = np.unique(np.stack([src, dst], axis=1), axis=0)
        src, dst = pairs[:, 0], pairs[:, 1]
    out["edges"] = len(src)
    cc.write_undirected(src, dst, cc.round_dir(f"{work}/cc", 0), q, P)
    # this job's own head of each bucket: its first row of this job (new rows sort last, by node)
    own = is_new & (start | ~np.concatenate([[False], is_new[:-1]]))
    heads = {"band": pa.array(band[own]), "band_key": pa.array(bkey[own]), NODE: pa.array(node[own])}
    if verify:
        width = sig.shape[1]
        hs = np.ascontiguousarray(sig[own])
        heads["sig"] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * width), len(hs),
                                                            [None, pa.py_buffer(hs.tobytes())])
    cc.write_by_node(pa.table(heads), node[own], f"{work}/heads", q, P)
    return out


def _roots(cc_dir: str, q: int) -> tuple[np.ndarray, np.ndarray]:
    """(node, root) of the non-root nodes of node partition q, sorted by node."""
    u, root = cc.star_labels(cc_dir, q)
    order = np.argsort(u, kind="stable")
    return u[order], root[order]


def _root_of(u: np.ndarray, root: np.ndarray, want: np.ndarray) -> np.ndarray:
    """The root of each node in `want` (itself when it is a root or alone)."""
    if len(u) == 0:
        return want.copy()
    pos = np.minimum(np.searchsorted(u, want), len(u) - 1)
    return np.where(u[pos] == want, root[pos], want)


def _kept_ref(root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept_key, origin code) of root nodes: code 0 for this job's documents."""
    new = (root & NEW) != 0
    code = np.where(new, 0, root >> np.uint64(cc.KEY_BITS)).astype(np.int64)
    return root & cc.KEY_MASK, code


def node_task(args: tuple) -> int:
    """Node partition q, its star labels read once: the index's bucket rows of its heads (with an
    index) and its removed nodes (`_index_buckets`, `_select_removed`). Returns the removed count."""
    cc_dir, work, q, P, names, with_index = args
    u, root = _roots(cc_dir, q)
    if with_index:
        _index_buckets(u, root, work, q, P, names)
    return _select_removed(u, root, work, q, P)


def root_task(args: tuple) -> dict:
    """Partition q after `node_task`: band partition q of the index sorted into place (with an
    index) and root partition q's decisions (`select_kept_task`)."""
    cc_dir, work, q, P, kept_files, names, index_root = args
    if index_root:
        _merge_index(work, index_root, q)
    return select_kept_task(args)


def _index_buckets(u: np.ndarray, root: np.ndarray, work: str, q: int, P: int, names: list[str]) -> int:
    """Node partition q: each of this job's bucket heads mapped to its kept document, the rows
    re-partitioned by band key for the index."""
    t = cc.read_by_node(f"{work}/heads", q)
    if t is None:
        return 0
    kept_key, code = _kept_ref(_root_of(u, root, t.column(NODE).to_numpy()))
    rows = {"band": t.column("band"), "band_key": t.column("band_key"), "kept_key": pa.array(kept_key),
            KEPT_IN: kept_in_column(code, names)}
    if "sig" in t.schema.names:
        rows["sig"] = t.column("sig")
    rows = pa.table(rows)
    write_scattered(rows, BUCKETS.partitions(rows.column("band_key").to_numpy(), P),
                    f"{work}/index-buckets/from-{q:05d}.parquet")
    return rows.num_rows


def _merge_index(work: str, index_root: str, p: int) -> int:
    """Band partition p of this output's index: its rows sorted by (band, band_key)."""
    t = read_scattered(f"{work}/index-buckets", p)
    if t is None:
        return 0
    write_part(index_root, BUCKETS, p, t.sort_by([("band", "ascending"), ("band_key", "ascending")]))
    return t.num_rows


def _read_ids(work: str, q: int) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(nodes sorted, ids, weights) of this job's documents in node partition q."""
    t = cc.read_by_node(f"{work}/ids", q, [NODE, ID, WEIGHT])
    if t is None:
        return np.zeros(0, np.uint64), pa.array([], pa.string()), np.zeros(0, np.int64)
    k = t.column(NODE).to_numpy().astype(np.uint64)
    order = np.argsort(k, kind="stable")
    return k[order], t.column(ID).combine_chunks().take(pa.array(order)), t.column(WEIGHT).to_numpy()[order]


def _positions(keys_sorted: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, found) of each wanted key in a sorted array."""
    if len(keys_sorted) == 0:
        return np.zeros(len(want), np.int64), np.zeros(len(want), bool)
    pos = np.minimum(np.searchsorted(keys_sorted, want), len(keys_sorted) - 1)
    return pos, keys_sorted[pos] == want


def _select_removed(u: np.ndarray, root: np.ndarray, work: str, q: int, P: int) -> int:
    """Node partition q: this job's removed nodes with their id and weight, re-partitioned by root."""
    new = (u & NEW) != 0  # an earlier output's document is never removed (nothing there is rewritten)
    u, root = u[new], root[new]
    if len(u) == 0:
        return 0
    keys, ids, weights = _read_ids(work, q)
    pos, found = _positions(keys, u)
    cc.write_by_node(pa.table({NODE: pa.array(u), "root": pa.array(root), ID: ids.take(pa.array(pos, mask=~found)),
                               WEIGHT: pa.array(np.where(found, weights[pos], 1))}),
                     root, f"{work}/removed", q, P)
    return len(u)


def select_kept_task(args: tuple) -> dict:
    """Root partition q: kept ids and cluster sizes; duplicates part, index parts (kept, wins) and
    apply fragments grouped by shard mod P."""
    cc_dir, work, q, P, kept_files, names, index_root = args
    keys, ids, weights = _read_ids(work, q)
    out = {"removed": 0, "removed_previous": 0, "components": 0, "kept": 0}
    t = cc.read_by_node(f"{work}/removed", q)
    if t is None:
        t = pa.table({NODE: pa.array([], pa.uint64()), "root": pa.array([], pa.uint64()),
                      ID: pa.array([], pa.string()), WEIGHT: pa.array([], pa.int64())})
    u = t.column(NODE).to_numpy().astype(np.uint64)
    root = t.column("root").to_numpy().astype(np.uint64)
    order = np.lexsort((u, root))
    u, root = u[order], root[order]
    uid = t.column(ID).combine_chunks().take(pa.array(order))
    uw = t.column(WEIGHT).to_numpy()[order]
    out["removed"] = len(u)
    roots, first = np.unique(root, return_index=True)
    out["components"] = len(roots)
    won = np.add.reduceat(uw, first) if len(u) else np.zeros(0, np.int64)  # weight removed per root
    kept_key, code = _kept_ref(roots)
    # the kept id of each root: this job's from its ids, an earlier output's from that output's index
    pos, found = _positions(keys, roots)
    is_new = code == 0
    at = np.where(found & is_new, pos, -1)  # position of each root's id in the concatenated sources
    sources, offset = [ids], len(ids)
    for origin, fl in kept_files:
        sel = np.flatnonzero(code == origin)
        k = read_parts(fl, ["kept_key", ID]) if len(sel) else None
        if k is None:
            continue
        kk = k.column("kept_key").to_numpy()
        o = np.argsort(kk, kind="stable")
        p2, f2 = _positions(kk[o], kept_key[sel])
        at[sel[f2]] = offset + o[p2[f2]]
        sources.append(k.column(ID).combine_chunks().cast(pa.string()))
        offset += k.num_rows
    kept_ids = pa.concat_arrays(sources).take(pa.array(at, mask=at < 0))
    per_row = np.repeat(np.arange(len(roots)), np.diff(np.append(first, len(u)))) if len(u) else np.zeros(0, np.int64)
    row_code = code[per_row]
    out["removed_previous"] = int(np.count_nonzero(row_code != 0))
    write_work_table(pa.table({"id": uid, "cluster_id": pa.array(kept_key[per_row]),
                                   KEPT_ID: kept_ids.take(pa.array(per_row)),
                                   KEPT_IN: kept_in_column(row_code, names)}, schema=DUPLICATES_SCHEMA),
                         f"{work}/dups/part-{q:05d}.parquet")
    # cluster sizes of this job's documents in partition q: own weight, plus what a root won
    size = weights.copy()
    rp, rf = _positions(keys, roots[is_new])
    size[rp[rf]] += won[is_new][rf]
    removed_here, _ = _roots(cc_dir, q)
    keep_mask = ~np.isin(keys, removed_here)
    out["kept"] = int(np.count_nonzero(keep_mask))
    if index_root:
        write_part(index_root, KEPT, q, pa.table({"kept_key": pa.array(keys[keep_mask] & cc.KEY_MASK),
                                                  ID: ids.filter(pa.array(keep_mask)),
                                                  CLUSTER_SIZE: pa.array(size[keep_mask])}, schema=KEPT_SCHEMA))
        prev = ~is_new
        write_part(index_root, WINS, q, pa.table({"kept_key": pa.array(kept_key[prev]),
                                                  KEPT_IN: kept_in_column(code[prev], names),
                                                  KEPT_ID: kept_ids.filter(pa.array(prev)),
                                                  REMOVED: pa.array(won[prev])}, schema=WINS_SCHEMA))
    # apply: removed rows (with their kept document) and this job's roots (with their size)
    new_roots = roots[is_new][rf] & cc.KEY_MASK
    akey = np.concatenate([u & cc.KEY_MASK, new_roots])
    nr = len(new_roots)
    decisions = pa.table({
        KEY: pa.array(akey),
        "removed": pa.array(np.concatenate([np.ones(len(u), bool), np.zeros(nr, bool)])),
        CLUSTER_SIZE: pa.array(np.concatenate([np.zeros(len(u), np.int64), size[rp[rf]]])),
        KEPT_ID: pa.concat_arrays([kept_ids.take(pa.array(per_row)), pa.nulls(nr, pa.string())]),
        KEPT_IN: pa.concat_arrays([kept_in_column(row_code, names), pa.nulls(nr, pa.string())]),
    }, schema=APPLY_SCHEMA)
    group = ((akey >> np.uint64(32)) % np.uint64(P)).astype(np.int64)
    write_scattered(decisions, group, f"{work}/apply/from-{q:05d}.parquet")
    return out

"""Connected components over partitioned edge files: alternating Large-Star / Small-Star.

Why not union-find: a single-process union-find must hold a parent entry for every document in
one process (what breaks datatrove and text-dedup at Common Crawl scale). Here no process ever
holds more than one partition of the edges.

Algorithm (Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii: "Connected Components in
MapReduce and Beyond", SoCC 2014). The graph is an edge list stored in both directions, hash
partitioned by the first endpoint, so one partition holds the whole neighbourhood Γ(u) of each of
its nodes u. Each round is one shuffle through files; a task handles one partition in numpy
(sort by u, segment minima with `np.minimum.reduceat`):

- Large-Star(u): m = min(Γ(u) ∪ {u}); emit (v, m) for every neighbour v > u.
- Small-Star(u): N = {v ∈ Γ(u): v < u}, m = min(N ∪ {u}); emit (v, m) for v ∈ N ∪ {u}, v ≠ m.

Both keep connectivity and only ever point nodes at smaller nodes. Alternating them converges in
O(log² n) rounds (in practice LSH graphs, already stars around each bucket's smallest document,
need 2-4) to a forest of stars, each centred on its component's smallest node. Termination is
checked locally while doing Small-Star: the graph is a set of stars iff every node that has a
smaller neighbour has degree 1; then Small-Star reproduces its input and we stop.
Result: for every non-root node u one edge (u, root(u)) with root(u) < u.

A graph of at most ONE_TASK_EDGES edges (what LSH gives for a corpus of up to a few million
documents) is solved in one task instead, to the same stars: its rounds would be files and task
round trips for milliseconds of work.

Memory: a task holds the edges of one partition (both directions): 2·E/P pairs of uint64 plus
sort buffers, ~64·E/P bytes; the driver holds only counters. Nodes are keys (uint64, the
engine's `_key`), so "smallest" is the global deterministic document order and the result does
not depend on the number of partitions.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.hashing import fmix64
from engine.io import remove
from engine.shuffle import read_scattered, scatter_table, write_scattered, write_work_table

EDGE_SCHEMA = pa.schema([pa.field("u", pa.uint64()), pa.field("v", pa.uint64())])


#: The low 56 bits of a node are a document key; minhash_dedup tags the nodes of documents of
#: other outputs in the top byte, and a document lands in the same partition whatever its tag.
KEY_BITS = 56
KEY_MASK = np.uint64((1 << KEY_BITS) - 1)


def node_partition(keys: np.ndarray, num_partitions: int) -> np.ndarray:
    """Partition of each node: fmix64(its low 56 bits) mod P (int64)."""
    h = fmix64(np.array(keys, dtype=np.uint64, copy=True) & KEY_MASK)
    return (h % np.uint64(num_partitions)).astype(np.int64)


def round_dir(root: str, r: int) -> str:
    return f"{root}/round-{r:03d}"


def write_by_node(table: pa.Table, keys: np.ndarray, out_dir: str, source: int, num_partitions: int) -> None:
    """Scatter rows by the node partition of their key into `out_dir/from-<source>.parquet` (a row
    group per partition), row order kept; read a partition with `read_by_node`."""
    write_scattered(table, node_partition(keys, num_partitions), f"{out_dir}/from-{source:05d}.parquet")


def read_by_node(out_dir: str, q: int, columns: list[str] | None = None) -> pa.Table | None:
    """Partition q of what every task wrote with `write_by_node` into out_dir, tasks in order."""
    return read_scattered(out_dir, q, columns)


def write_by_shard(table: pa.Table, keys: np.ndarray, out_dir: str, source: int) -> list[tuple[int, str]]:
    """Scatter rows by the shard of their document key to `out_dir/shard-<s>/part-<source>.parquet`;
    returns (shard, path) of each file written (a reduce task's per-shard pieces)."""
    written = []
    for shard, rows in scatter_table(table, (np.asarray(keys, dtype=np.uint64) >> np.uint64(32)).astype(np.int64)):
        path = f"{out_dir}/shard-{shard:06d}/part-{source:05d}.parquet"
        write_work_table(rows, path)
        written.append((shard, path))
    return written


def write_undirected(a: np.ndarray, b: np.ndarray, out_dir: str, source: int, num_partitions: int) -> int:
    """Write edges {a, b} in both directions, partitioned by the first endpoint. Returns #rows."""
    if len(a) == 0:
        return 0
    u = np.concatenate([a, b])
    v = np.concatenate([b, a])
    write_by_node(pa.table({"u": pa.array(u), "v": pa.array(v)}, schema=EDGE_SCHEMA), u, out_dir, source,
                  num_partitions)
    return len(u)


def read_edges(d: str, q: int) -> tuple[np.ndarray, np.ndarray]:
    """All directed edges of partition q of a round folder, de-duplicated, sorted by (u, v)."""
    t = read_by_node(d, q, ["u", "v"])
    if t is None:
        z = np.zeros(0, np.uint64)
        return z, z
    u, v = t.column("u").to_numpy(), t.column("v").to_numpy()
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    if len(u) > 1:
        keep = np.ones(len(u), dtype=bool)
        keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        u, v = u[keep], v[keep]
    return u, v


def _segments(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of each run of equal u (u sorted) and, per row, its run index."""
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(u))))
    return starts, seg


def large_star_task(args: tuple) -> dict:
    in_dir, out_dir, q, num_partitions = args
    u, v = read_edges(in_dir, q)
    if len(u) == 0:
        return {"edges_in": 0, "edges_out": 0}
    starts, seg = _segments(u)
    m = np.minimum(np.minimum.reduceat(v, starts), u[starts])  # min of Γ(u) ∪ {u}
    mm = m[seg]
    sel = v > u
    n = write_undirected(v[sel], mm[sel], out_dir, q, num_partitions)
    return {"edges_in": len(u), "edges_out": n}


def small_star_task(args: tuple) -> dict:
    in_dir, out_dir, q, num_partitions = args
    u, v = read_edges(in_dir, q)
    if len(u) == 0:
        return {"edges_in": 0, "edges_out": 0, "violations": 0}
    starts, seg = _segments(u)
    deg = np.diff(np.append(starts, len(u)))
    smaller = v < u
    has_smaller = np.zeros(len(starts), dtype=bool)
    np.logical_or.at(has_smaller, seg[smaller], True)
    violations = int(np.count_nonzero(has_smaller & (deg > 1)))
    # m = min(N ∪ {u}); since v sorted within each u, the first neighbour is the minimum
    first = v[starts]
    m = np.where(first < u[starts], first, u[starts])
    mm = m[seg]
    # emit (v, m) for v in N with v != m, and (u, m) for nodes with N non-empty
    sel = smaller & (v != mm)
    ua = u[starts][has_smaller]
    a = np.concatenate([v[sel], ua])
    b = np.concatenate([mm[sel], m[has_smaller]])
    n = write_undirected(a, b, out_dir, q, num_partitions)
    return {"edges_in": len(u), "edges_out": n, "violations": violations}


#: Undirected edges one task may hold to solve the components alone (~100 bytes each at peak):
#: an LSH graph this small is a few rounds of files and task round trips for a few ms of work.
ONE_TASK_EDGES = 1 << 21


def one_task_components(args: tuple) -> int:
    """Every partition of a round folder read in one task; each component's nodes pointed at its
    smallest node (min-label propagation with pointer jumping over the compacted nodes), written as
    a converged star graph (what `star_labels` reads, as Large-Star/Small-Star leave it). Returns
    the directed edges read."""
    in_dir, out_dir, num_partitions = args
    parts = [read_edges(in_dir, q) for q in range(num_partitions)]
    u = np.concatenate([p[0] for p in parts] + [np.zeros(0, np.uint64)])
    v = np.concatenate([p[1] for p in parts] + [np.zeros(0, np.uint64)])
    if len(u) == 0:
        return 0
    nodes, inv = np.unique(np.concatenate([u, v]), return_inverse=True)  # sorted: index order = node order
    a, b = inv[:len(u)], inv[len(u):]
    label = np.arange(len(nodes))
    while True:
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        while True:  # pointer jumping: each node to its label's label, until fixed
            nxt = new[new]
            if (nxt == new).all():
                break
            new = nxt
        if (new == label).all():
            break
        label = new
    moved = label != np.arange(len(nodes))
    write_undirected(nodes[moved], nodes[label[moved]], out_dir, 0, num_partitions)
    return len(u)


def star_labels(d: str, q: int) -> tuple[np.ndarray, np.ndarray]:
    """(node, root) of every non-root node of partition q of a converged round folder."""
    u, v = read_edges(d, q)
    sel = v < u
    return u[sel], v[sel]


def connected_components(root: str, num_partitions: int, parallel, max_rounds: int = 64,
                         edges: int | None = None) -> tuple[str, dict]:
    """Run Large-Star/Small-Star from `round_dir(root, 0)` (edges written with `write_undirected`).

    Returns the folder of the converged star graph (read it with `star_labels`) and stats. With
    `edges` (undirected edges written, at most) up to ONE_TASK_EDGES the graph is solved in one
    task instead (`one_task_components`): the same stars, without a round trip per round.
    """
    cur = round_dir(root, 0)
    stats = {"rounds": 0, "max_partition_edges": 0}
    if edges is not None and edges <= ONE_TASK_EDGES:
        nxt = round_dir(root, 1)
        stats["max_partition_edges"] = parallel(one_task_components, [(cur, nxt, num_partitions)])[0]
        remove(cur)
        return nxt, stats
    r = 0
    while True:
        if r >= 2 * max_rounds:
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
        nxt = round_dir(root, r + 1)
        res = parallel(large_star_task, [(cur, nxt, q, num_partitions) for q in range(num_partitions)])
        stats["max_partition_edges"] = max([stats["max_partition_edges"]] + [x["edges_in"] for x in res])
        remove(cur)
        cur, r = nxt, r + 1
        nxt = round_dir(root, r + 1)
        res = parallel(small_star_task, [(cur, nxt, q, num_partitions) for q in range(num_partitions)])
        stats["max_partition_edges"] = max([stats["max_partition_edges"]] + [x["edges_in"] for x in res])
        remove(cur)
        cur, r = nxt, r + 1
        stats["rounds"] += 1
        if sum(x["violations"] for x in res) == 0:
            return cur, stats

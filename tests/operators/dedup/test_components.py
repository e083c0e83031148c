"""Connected components (Large-Star/Small-Star over partitioned edge files) and the exact
clustering of minhash_dedup's reduce on constructed bucket tables (chains, stars, disjoint
groups, singletons), checked against scipy's connected components."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as scipy_cc

from engine.documents import KEY
from engine.io import read_parquet
from operators.dedup import components as C
from operators.dedup.minhash_dedup import MinHashDedup
from support import global_context, read_apply, serial_map, write_map_output


def labels_from(root: str, edges: np.ndarray, n: int, parts: int, one_task: bool = False) -> tuple[np.ndarray, dict]:
    C.write_undirected(edges[:, 0], edges[:, 1], C.round_dir(root, 0), 0, parts)
    out, stats = C.connected_components(root, parts, serial_map, edges=len(edges) if one_task else None)
    lab = np.arange(n, dtype=np.uint64)
    for q in range(parts):
        u, r = C.star_labels(out, q)
        assert (r < u).all()
        lab[u.astype(np.int64)] = r
    return lab, stats


def expected_labels(edges: np.ndarray, n: int) -> np.ndarray:
    g = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0].astype(int), edges[:, 1].astype(int))), shape=(n, n))
    _, comp = scipy_cc(g, directed=False)
    mins = np.full(comp.max() + 1, n)
    np.minimum.at(mins, comp, np.arange(n))
    return mins[comp].astype(np.uint64)


@pytest.mark.parametrize("parts", [1, 4, 13])
def test_random_graphs_match_scipy(tmp_path, parts):
    rng = np.random.default_rng(parts)
    for trial, (n, m) in enumerate([(500, 300), (3000, 2900), (2000, 6000)]):
        e = rng.integers(0, n, size=(m, 2)).astype(np.uint64)
        e = e[e[:, 0] != e[:, 1]]
        lab, stats = labels_from(str(tmp_path / f"{trial}"), e, n, parts)
        assert (lab == expected_labels(e, n)).all()
        assert stats["rounds"] >= 1


@pytest.mark.parametrize("parts", [1, 4])
def test_one_task_components_match_scipy(tmp_path, parts):
    """A graph small enough for one task gives the stars of the rounds (and scipy's components)."""
    rng = np.random.default_rng(10 + parts)
    for trial, (n, m) in enumerate([(500, 300), (3000, 2900), (2000, 6000)]):
        e = rng.integers(0, n, size=(m, 2)).astype(np.uint64)
        e = e[e[:, 0] != e[:, 1]]
        lab, stats = labels_from(str(tmp_path / f"{trial}"), e, n, parts, one_task=True)
        assert (lab == expected_labels(e, n)).all()
        assert stats["rounds"] == 0 and stats["max_partition_edges"] == 2 * len(np.unique(np.sort(e, axis=1), axis=0))
    perm = np.random.default_rng(1).permutation(1000).astype(np.uint64)  # a long path
    lab, _ = labels_from(str(tmp_path / "p"), np.stack([perm[:-1], perm[1:]], axis=1), 1000, parts, one_task=True)
    assert (lab == perm.min()).all()
    out, _ = C.connected_components(str(tmp_path / "none"), parts, serial_map, edges=0)
    assert all(len(C.star_labels(out, q)[0]) == 0 for q in range(parts))


def test_long_path_and_big_keys(tmp_path):
    # a path 0-1-2-...-999 in shuffled order: the worst case for label propagation
    n = 1000
    perm = np.random.default_rng(1).permutation(n).astype(np.uint64)
    e = np.stack([perm[:-1], perm[1:]], axis=1)
    lab, stats = labels_from(str(tmp_path / "p"), e, n, 5)
    assert (lab == perm.min()).all()
    assert stats["rounds"] < 40
    # keys with high bits (shard << 32) survive the round trip
    big = np.array([[(5 << 32) | 7, (3 << 32) | 9], [(3 << 32) | 9, (9 << 32) | 1]], dtype=np.uint64)
    C.write_undirected(big[:, 0], big[:, 1], C.round_dir(str(tmp_path / "b"), 0), 0, 3)
    out, _ = C.connected_components(str(tmp_path / "b"), 3, serial_map)
    got = {}
    for q in range(3):
        u, r = C.star_labels(out, q)
        got.update(zip(u.tolist(), r.tolist()))
    assert got == {(5 << 32) | 7: (3 << 32) | 9, (9 << 32) | 1: (3 << 32) | 9}


def test_no_edges(tmp_path):
    out, _ = C.connected_components(str(tmp_path / "none"), 4, serial_map)
    assert all(len(C.star_labels(out, q)[0]) == 0 for q in range(4))


# ------------------------------------------------------------------ reduce on constructed buckets

def run_buckets(tmp_path, docs: dict[str, tuple[int, list[tuple[int, int]]]], parts: int, shards: int = 2):
    """docs: id -> (key, [(band, band_key), ...]). Writes map outputs through the engine's map writer."""
    op = MinHashDedup(partitions=parts, bands=4, rows=2)
    ctx = global_context(tmp_path / "w", shards, parts, out=tmp_path / "o")
    rows = {"band": [], "band_key": [], KEY: [], "id": []}
    for i, (key, bks) in docs.items():
        for band, bk in bks:
            rows["band"].append(band)
            rows["band_key"].append(bk)
            rows[KEY].append(key)
            rows["id"].append(i if band == 0 else None)
    part = (np.array(rows["band_key"], dtype=np.uint64) % np.uint64(parts)).astype(np.int32)
    t = pa.table({"band": pa.array(rows["band"], pa.uint16()), "band_key": pa.array(rows["band_key"], pa.uint64()),
                  KEY: pa.array(rows[KEY], pa.uint64()), "id": pa.array(rows["id"], pa.string()),
                  "_partition": pa.array(part)})
    shard = np.array(rows[KEY], dtype=np.uint64) >> np.uint64(32)
    for s in range(shards):
        write_map_output(ctx, s, t.filter(pa.array(shard == s)))
    stats = op.reduce(ctx)
    d = read_parquet(str(tmp_path / "o" / "duplicates.parquet"))
    kept_of = dict(zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist()))
    applied, sizes = set(), {}
    for s in range(shards):
        table = read_apply(ctx, s)
        if table is not None:
            removed = table.column("removed").to_pylist()
            for key, rm, size in zip(table.column(KEY).to_pylist(), removed,
                                     table.column("minhash_cluster_size").to_pylist()):
                if rm:
                    applied.add(key)
                else:
                    sizes[key] = size
    return stats, kept_of, applied, sizes


def _docs():
    S1 = 1 << 32
    # every doc has 4 bands; unique band keys unless shared on purpose
    uniq = iter(range(10_000, 20_000))

    def bands(shared: dict[int, int]):
        return [(b, shared.get(b, next(uniq))) for b in range(4)]

    return {
        # chain: a~b share band 0, b~c share band 2, a and c share nothing -> one component
        "a": (S1 + 5, bands({0: 1})),
        "b": (3, bands({0: 1, 2: 2})),
        "c": (S1 + 1, bands({2: 2})),
        # star around s0 in different bands, with s0 not the smallest of each bucket
        "s0": (20, bands({0: 3, 1: 4, 2: 5, 3: 6})),
        "s1": (S1 + 20, bands({0: 3})),
        "s2": (21, bands({1: 4})),
        "s3": (S1 + 22, bands({2: 5})),
        "s4": (19, bands({3: 6})),
        # disjoint pair (same key value in different bands must NOT connect: band 1 key 7 vs band 3 key 7)
        "p1": (40, bands({1: 7})),
        "p2": (41, bands({1: 7})),
        "q1": (42, bands({3: 7})),
        # singletons
        "x": (50, bands({})),
        "y": (S1 + 50, bands({})),
    }


@pytest.mark.parametrize("parts", [1, 3, 8])
def test_constructed_clusters(tmp_path, parts):
    docs = _docs()
    stats, kept_of, applied, sizes = run_buckets(tmp_path, docs, parts)
    assert kept_of == {
        "a": "b", "c": "b",
        "s0": "s4", "s1": "s4", "s2": "s4", "s3": "s4",
        "p2": "p1",
    }
    assert stats["removed"] == 7 and stats["components"] == 3
    assert applied == {docs[i][0] for i in kept_of}
    # each kept root gets its cluster size (itself + its removed members); singletons need no row
    assert sizes == {docs["b"][0]: 3, docs["s4"][0]: 5, docs["p1"][0]: 2}


def test_constructed_clusters_cluster_ids(tmp_path):
    docs = _docs()
    run_buckets(tmp_path, docs, 4)
    d = read_parquet(str(tmp_path / "o" / "duplicates.parquet"))
    for i, cid, kid in zip(*(d.column(c).to_pylist() for c in ("id", "cluster_id", "kept_id"))):
        assert cid == docs[kid][0]

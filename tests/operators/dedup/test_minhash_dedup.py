"""The minhash_dedup global operator end to end: precision and recall on real text with known edits,
survivors independent of partitions and shard split, verification, empty input.

Reduce runs through a real GlobalContext, with map outputs written by the engine's own map writer."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from benchmarks.corpora.documents import edit_words
from engine.documents import KEY, make_batch, set_column
from engine.io import read_parquet
from engine.registry import get_operator
from operators.dedup import minhash as M
from operators.dedup.minhash_dedup import REASON, MinHashDedup
from support import run_global_operator, shingle_jaccard, wikitext_words


def run_global(op: MinHashDedup, shards: list[tuple[list[str], list[str]]], tmp, partitions: int):
    """map every shard, shuffle as the engine does, reduce, apply. Returns (stats, kept ids, removed
    ids, the duplicates file)."""
    assert op.num_partitions() == partitions
    batches = []
    for s, (ids, txts) in enumerate(shards):
        b = make_batch({"id": ids, "text": txts})
        keys = (np.uint64(s) << np.uint64(32)) + np.arange(len(ids), dtype=np.uint64)
        batches.append(set_column(b, KEY, pa.array(keys)))
    results, stats = run_global_operator(op, batches, tmp / "work", out=tmp / "out")
    kept, removed = [], []
    for b, r in zip(batches, results):
        ids = b.column("id").to_pylist()
        keep = np.ones(b.num_rows, bool) if r.keep is None else r.keep
        for i, k in enumerate(keep):
            (kept if k else removed).append(ids[i])
            if not k:
                assert r.reasons[i] == REASON
    return stats, kept, removed, tmp / "out" / "duplicates.parquet"


@pytest.fixture(scope="module")
def corpus(shared_data):
    """Real wikitext passages, plus edited copies with known small edits (near duplicates),
    plus copies with heavy edits (not duplicates)."""
    vocab = wikitext_words(shared_data)
    rng = random.Random(7)
    docs, ids, dup_of = [], [], {}
    for i in range(120):
        s = i * 1500 + rng.randrange(0, 1000)  # disjoint passages
        docs.append(" ".join(vocab[s:s + rng.randrange(150, 400)]))
        ids.append(f"orig-{i}")
    for i in range(40):  # near duplicates: 1-2% edits, J well above 0.8 on average
        w = edit_words(docs[i].split(), 0.01, rng, vocab)
        docs.append(" ".join(w))
        ids.append(f"near-{i}")
        dup_of[f"near-{i}"] = f"orig-{i}"
    for i in range(40, 60):  # heavy edits: 40%, J far below the threshold
        docs.append(" ".join(edit_words(docs[i].split(), 0.4, rng, vocab)))
        ids.append(f"far-{i}")
    # shuffle deterministically so originals and copies interleave
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [ids[i] for i in order], [docs[i] for i in order], dup_of


def test_params():
    op = get_operator("minhash_dedup")()
    assert op.params.threshold == 0.8 and op.params.num_perm == 112 and op.params.ngram == 5
    assert op.band_rows == M.optimal_bands(0.8, 112)
    assert MinHashDedup(bands=10, rows=11).band_rows == (10, 11)
    with pytest.raises(ValidationError):
        MinHashDedup(bands=10)
    with pytest.raises(ValidationError):
        MinHashDedup(bands=20, rows=20)
    with pytest.raises(ValidationError):
        MinHashDedup(unknown=1)


def test_end_to_end_precision_recall_and_duplicates_file(corpus, tmp_path):
    ids, docs, dup_of = corpus
    shards = [(ids[i::3], docs[i::3]) for i in range(3)]
    stats, kept, removed, dup_path = run_global(MinHashDedup(partitions=5), shards, tmp_path, 5)
    assert len(kept) + len(removed) == len(ids)
    assert stats["removed"] == len(removed) and stats["candidate_pairs"] >= len(removed)
    by_id = dict(zip(ids, docs))
    # every removed doc is truly similar to its kept representative (precision)
    dups = read_parquet(str(dup_path))
    assert dups.schema.names == ["id", "cluster_id", "kept_id", "kept_in"]
    assert dups.column("kept_in").null_count == dups.num_rows  # every kept document is in this output
    assert sorted(dups.column("id").to_pylist()) == sorted(removed)
    for rid, kid in zip(dups.column("id").to_pylist(), dups.column("kept_id").to_pylist()):
        assert kid in kept
        assert shingle_jaccard(by_id[rid], by_id[kid]) >= 0.6, (rid, kid)
    # recall: the injected near duplicates lose one member of each pair
    pairs_with_high_j = [(a, b) for a, b in dup_of.items() if shingle_jaccard(by_id[a], by_id[b]) >= 0.85]
    assert len(pairs_with_high_j) >= 30
    rep = {i: i for i in kept}
    rep.update(zip(dups.column("id").to_pylist(), dups.column("kept_id").to_pylist()))
    # LSH is probabilistic: with the default 9 bands x 12 rows a pair at J=0.85 is a candidate
    # with p~0.85, at J=0.95 with p>0.999
    found = [rep[a] == rep[b] for a, b in pairs_with_high_j]
    assert np.mean(found) >= 0.8, np.mean(found)
    for a, b in pairs_with_high_j:
        if shingle_jaccard(by_id[a], by_id[b]) >= 0.95:
            assert rep[a] == rep[b], (a, b)
    # heavily edited copies and unrelated docs stay
    assert not any(r.startswith("far-") for r in removed)
    # the kept one is the smallest _key of the cluster: the first in (shard, ordinal) order
    order = {i: (s, j) for s, (sids, _) in enumerate(shards) for j, i in enumerate(sids)}
    for rid, kid, cid in zip(*(dups.column(c).to_pylist() for c in ("id", "kept_id", "cluster_id"))):
        assert order[kid] < order[rid]
        assert cid == (order[kid][0] << 32) | order[kid][1]


def test_survivors_do_not_depend_on_partitions_or_shard_split(corpus, tmp_path):
    ids, docs, _ = corpus
    results = []
    for k, (nshards, parts) in enumerate([(1, 1), (3, 16), (7, 3)]):
        # consecutive shards keep the global order: same "first occurrence" whatever the split
        bounds = np.linspace(0, len(ids), nshards + 1).astype(int)
        shards = [(ids[bounds[i]:bounds[i + 1]], docs[bounds[i]:bounds[i + 1]]) for i in range(nshards)]
        _, kept, _removed, dup_path = run_global(MinHashDedup(partitions=parts), shards, tmp_path / str(k), parts)
        d = read_parquet(str(dup_path))
        results.append((sorted(kept), sorted(zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist()))))
    assert results[0] == results[1] == results[2]
    assert len(results[0][1]) > 0


def test_verify_drops_unverified_edges(corpus, tmp_path):
    ids, docs, _ = corpus
    # deliberately loose LSH (many false candidates) with verification on
    loose = MinHashDedup(bands=28, rows=2, verify=True, partitions=4)
    stats, _kept, removed, dup_path = run_global(loose, [(ids, docs)], tmp_path / "v", 4)
    assert stats["verified_out"] > 0
    by_id = dict(zip(ids, docs))
    d = read_parquet(str(dup_path))
    assert d.num_rows == len(removed) > 0
    for rid, kid in zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist()):
        assert shingle_jaccard(by_id[rid], by_id[kid]) >= 0.6
    assert not any(r.startswith("far-") for r in removed)


def test_no_duplicates_and_empty_texts(tmp_path):
    ids = ["a", "b", "c", "d"]
    texts = ["one two three four five six", "", None, "completely different words in this one here"]
    stats, kept, removed, dup_path = run_global(MinHashDedup(partitions=2), [(ids, texts)], tmp_path, 2)
    assert removed == [] and sorted(kept) == ids
    assert stats["removed"] == 0
    assert read_parquet(str(dup_path)).num_rows == 0

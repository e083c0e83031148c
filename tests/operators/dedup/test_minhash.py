"""MinHash signatures, LSH parameters and the minhash_dedup global operator end to end.

Reduce runs through a real GlobalContext with map outputs written exactly as the engine does
(map table split by `_partition`, one parquet per shard per partition)."""
from __future__ import annotations

import os
import random

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from engine.documents import KEY, make_batch, set_column
from engine.io import read_parquet, write_parquet_atomic
from engine.operator import GlobalContext, get_operator
from benchmarks.corpus import edit_words
from operators.dedup import minhash as M
from operators.dedup.minhash_dedup import REASON, MinHashDedup

# ---------------------------------------------------------------------------- helpers

def _words(shared_data) -> list[str]:
    return (shared_data / "text" / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split()




def _shingles(text: str, n: int = 5) -> set[str]:
    w = M.normalize(text).split()
    return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


def run_global(op: MinHashDedup, shards: list[tuple[list[str], list[str]]], tmp, partitions: int):
    """map every shard, shuffle as the engine does, reduce, apply. Returns (stats, kept ids, removed ids)."""
    op.ensure_setup()
    work = str(tmp / "work")
    ctx = GlobalContext(workdir=work, num_shards=len(shards), num_partitions=partitions,
                        parallel=lambda fn, items: [fn(i) for i in items],
                        shard_names=[f"s{i}" for i in range(len(shards))], output_dir=str(tmp / "out"))
    batches = []
    for s, (ids, txts) in enumerate(shards):
        b = make_batch({"id": ids, "text": txts})
        keys = (np.uint64(s) << np.uint64(32)) + np.arange(len(ids), dtype=np.uint64)
        b = set_column(b, KEY, pa.array(keys))
        batches.append(b)
        m = op.map(b)
        if m is None:
            continue
        part = m.column("_partition").to_numpy()
        assert part.min() >= 0 and part.max() < partitions
        for p in np.unique(part):
            write_parquet_atomic(m.filter(pa.array(part == p)), f"{ctx.map_dir(int(p))}/{s:05d}.parquet")
    stats = op.reduce(ctx)
    kept, removed = [], []
    for s, b in enumerate(batches):
        path = ctx.apply_path(s)
        table = read_parquet(path) if os.path.exists(path) else None
        r = op.apply(b, table)
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
    vocab = _words(shared_data)
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


# ---------------------------------------------------------------------------- signatures

def test_estimate_quality_matches_datasketch(shared_data):
    from datasketch import MinHash
    vocab = _words(shared_data)
    rng = random.Random(0)
    a_docs, b_docs = [], []
    for _ in range(250):
        s = rng.randrange(0, len(vocab) - 400)
        w = vocab[s:s + rng.randrange(60, 300)]
        a_docs.append(" ".join(w))
        b_docs.append(" ".join(edit_words(w, rng.random() * 0.5, rng, vocab)))
    true = np.array([_jaccard(a, b) for a, b in zip(a_docs, b_docs)])
    assert true.std() > 0.15  # varied overlap
    num_perm = 112
    sa, va = M.minhash_signatures(a_docs, num_perm)
    sb, vb = M.minhash_signatures(b_docs, num_perm)
    assert va.all() and vb.all()
    ours = np.abs(M.jaccard_estimate(sa, sb) - true).mean()
    ma = MinHash.bulk([[x.encode() for x in _shingles(a)] for a in a_docs], num_perm=num_perm)
    mb = MinHash.bulk([[x.encode() for x in _shingles(b)] for b in b_docs], num_perm=num_perm)
    ref = np.abs(np.array([x.jaccard(y) for x, y in zip(ma, mb)]) - true).mean()
    assert ours < 0.05
    assert ours <= ref + 0.01, (ours, ref)


def test_vectorised_xxh3_is_bit_exact(shared_data):
    import xxhash
    rng = random.Random(3)
    words = [bytes(rng.randrange(33, 256) for _ in range(rng.randrange(1, 40))) for _ in range(5000)]
    words += (shared_data / "text" / "lingua" / "ru.txt").read_text(encoding="utf-8").encode().split()[:3000]
    data = b" ".join(words) + b"  "
    h, starts, lens = M.split_hash(data)
    assert [data[s:s + n] for s, n in zip(starts.tolist(), lens.tolist())] == data.split()
    assert h.tolist() == [xxhash.xxh3_64_intdigest(w) for w in data.split()]


def test_normalisation_and_identity():
    a = "The Quick, brown fox -- jumped over 12 lazy dogs!! Again & again."
    b = "the quick brown fox jumped over 99   lazy dogs again again"
    assert M.normalize(a) == M.normalize(b) == "the quick brown fox jumped over 00 lazy dogs again again"
    assert M.normalize("Ça “va” — Été\u00a0x") == "ça va été x"
    sig, valid = M.minhash_signatures([a, b, "", "   ...  ", "two words"], 64)
    assert valid.tolist() == [True, True, False, False, True]
    assert (sig[0] == sig[1]).all()
    assert (sig[2] == M.EMPTY).all()
    assert not (sig[4] == sig[0]).all()


def test_batch_and_chunking_do_not_change_signatures(shared_data):
    vocab = _words(shared_data)
    docs = [" ".join(vocab[i * 97:i * 97 + n]) for i, n in enumerate([1, 3, 4, 5, 6, 50, 700, 2, 0, 300])]
    docs.append("Ünïcode “quoted” text, ça marche — 2024 naïve café")  # non-ASCII path mixed in
    docs.append("contains the \x02 sentinel character itself in the text body here")
    whole, valid = M.minhash_signatures(docs, 32, chunk=4096)
    small, _ = M.minhash_signatures(docs, 32, chunk=7)  # docs spanning many chunks
    assert (whole == small).all()
    for i, d in enumerate(docs):
        one, v1 = M.minhash_signatures([d], 32)
        assert (one[0] == whole[i]).all() and v1[0] == valid[i]
    # short docs: fewer than n words -> one shingle of all words; different lengths differ
    assert not valid[8]
    short, v = M.minhash_signatures(["alpha", "alpha beta", "alpha beta gamma delta"], 32)
    assert v.all()
    assert not (short[0] == short[1]).all() and not (short[1] == short[2]).all()


def test_optimal_bands_like_datasketch():
    from datasketch.lsh import _optimal_param
    for threshold, num_perm in [(0.8, 112), (0.7, 128), (0.5, 64), (0.9, 256)]:
        ours = M.optimal_bands(threshold, num_perm)
        ref = _optimal_param(threshold, num_perm, 0.5, 0.5)
        assert ours[0] * ours[1] <= num_perm
        def err(b, r, t=threshold):
            return M.false_positive_area(t, b, r) + M.false_negative_area(t, b, r)
        assert err(*ours) <= err(*ref) + 1e-3, (threshold, ours, ref)


def test_band_keys():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(50, 20), dtype=np.uint64).astype(np.uint32)
    sig[1] = sig[0]
    sig[2, :5] = sig[0, :5]  # shares only band 0 with doc 0
    k = M.band_keys(sig, 4, 5)
    assert k.shape == (50, 4) and k.dtype == np.uint64
    assert (k[1] == k[0]).all()
    assert k[2, 0] == k[0, 0] and (k[2, 1:] != k[0, 1:]).all()
    assert len(np.unique(k)) == k.size - 4 - 1  # equal rows in different bands still differ
    with pytest.raises(ValueError):
        M.band_keys(sig, 5, 5)


# ---------------------------------------------------------------------------- operator

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
    assert dups.schema.names == ["id", "cluster_id", "kept_id"]
    assert sorted(dups.column("id").to_pylist()) == sorted(removed)
    for rid, kid in zip(dups.column("id").to_pylist(), dups.column("kept_id").to_pylist()):
        assert kid in kept
        assert _jaccard(by_id[rid], by_id[kid]) >= 0.6, (rid, kid)
    # recall: the injected near duplicates lose one member of each pair
    pairs_with_high_j = [(a, b) for a, b in dup_of.items() if _jaccard(by_id[a], by_id[b]) >= 0.85]
    assert len(pairs_with_high_j) >= 30
    rep = {i: i for i in kept}
    rep.update(zip(dups.column("id").to_pylist(), dups.column("kept_id").to_pylist()))
    # LSH is probabilistic: with the default 9 bands x 12 rows a pair at J=0.85 is a candidate
    # with p~0.85, at J=0.95 with p>0.999
    found = [rep[a] == rep[b] for a, b in pairs_with_high_j]
    assert np.mean(found) >= 0.8, np.mean(found)
    for a, b in pairs_with_high_j:
        if _jaccard(by_id[a], by_id[b]) >= 0.95:
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
    for rid, kid in zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist()):
        assert _jaccard(by_id[rid], by_id[kid]) >= 0.6
    assert not any(r.startswith("far-") for r in removed)


def test_no_duplicates_and_empty_texts(tmp_path):
    ids = ["a", "b", "c", "d"]
    texts = ["one two three four five six", "", None, "completely different words in this one here"]
    stats, kept, removed, dup_path = run_global(MinHashDedup(partitions=2), [(ids, texts)], tmp_path, 2)
    assert removed == [] and sorted(kept) == ids
    assert stats["removed"] == 0
    assert read_parquet(str(dup_path)).num_rows == 0


def test_decant_dedup_command_end_to_end(shared_data, tmp_path):
    """jobs.dedup_cmd.dedup runs reader -> minhash_dedup -> writer through run_job."""
    import json

    from jobs.dedup_cmd import dedup, dedup_job
    vocab = _words(shared_data)
    src = tmp_path / "docs.jsonl"
    with open(src, "w") as f:
        for i in range(60):
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(vocab[i * 400:i * 400 + 300])}) + "\n")
        for i in range(10):
            w = vocab[i * 400:i * 400 + 300]
            w[100] = "edited"
            f.write(json.dumps({"id": f"copy{i}", "text": " ".join(w)}) + "\n")
    spec = dedup_job([str(src)], str(tmp_path / "o"), bands=10, rows=11)
    assert spec["pipeline"] == [{"minhash_dedup": {"threshold": 0.8, "ngram": 5, "num_perm": 112, "partitions": 16,
                                                   "verify": False, "bands": 10, "rows": 11}}]
    out = tmp_path / "out"
    stats = dedup(inputs=[str(src)], output=str(out), threshold=0.8, ngram=5, num_perm=112, bands=None, rows=None,
                  workers=1)
    assert stats["operators"]["minhash_dedup"]["dropped"] == {"near_duplicate": 10}
    d = read_parquet(str(out / "duplicates.parquet"))
    assert sorted(zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist())) == \
        sorted((f"copy{i}", f"d{i}") for i in range(10))

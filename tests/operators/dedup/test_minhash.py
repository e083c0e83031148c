"""MinHash signatures and LSH parameters, against datasketch and xxhash on real text."""
from __future__ import annotations

import random

import numpy as np
import pytest

from benchmarks.corpora.documents import edit_words
from operators.dedup import minhash as M
from support import shingle_jaccard, wikitext_words, word_shingles


def test_estimate_quality_matches_datasketch(shared_data):
    from datasketch import MinHash
    vocab = wikitext_words(shared_data)
    rng = random.Random(0)
    a_docs, b_docs = [], []
    for _ in range(250):
        s = rng.randrange(0, len(vocab) - 400)
        w = vocab[s:s + rng.randrange(60, 300)]
        a_docs.append(" ".join(w))
        b_docs.append(" ".join(edit_words(w, rng.random() * 0.5, rng, vocab)))
    true = np.array([shingle_jaccard(a, b) for a, b in zip(a_docs, b_docs)])
    assert true.std() > 0.15  # varied overlap
    num_perm = 112
    sa, va = M.minhash_signatures(a_docs, num_perm)
    sb, vb = M.minhash_signatures(b_docs, num_perm)
    assert va.all() and vb.all()
    ours = np.abs(M.jaccard_estimate(sa, sb) - true).mean()
    ma = MinHash.bulk([[x.encode() for x in word_shingles(a)] for a in a_docs], num_perm=num_perm)
    mb = MinHash.bulk([[x.encode() for x in word_shingles(b)] for b in b_docs], num_perm=num_perm)
    ref = np.abs(np.array([x.jaccard(y) for x, y in zip(ma, mb)]) - true).mean()
    assert ours < 0.05
    assert ours <= ref + 0.01, (ours, ref)


def test_vectorised_xxh3_is_bit_exact(shared_data):
    import xxhash
    rng = random.Random(3)
    words = [bytes(rng.randrange(33, 256) for _ in range(rng.randrange(1, 40))) for _ in range(5000)]
    words += [bytes(rng.randrange(33, 256) for _ in range(n)) for n in range(1, 200) for _ in range(3)]  # every path
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
    vocab = wikitext_words(shared_data)
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


def test_arrow_column_gives_the_signatures_of_its_strings(shared_data):
    """An Arrow text column (nulls, chunks, an offset slice) hashes like the same Python strings."""
    import pyarrow as pa
    vocab = wikitext_words(shared_data)
    docs = [" ".join(vocab[i * 50:i * 50 + 40]) for i in range(30)]
    docs[3] = "Ünïcode “quoted” text, ça marche — naïve café ΟΔΟΣ.Α"
    docs[7] = "with the \x02 sentinel inside"
    col = pa.array(docs[:10] + [None] + docs[10:], pa.string())
    expect, _ = M.minhash_signatures(docs[:10] + [""] + docs[10:], 32)
    for texts in (col, pa.chunked_array([col.slice(0, 4), col.slice(4)]), col.cast(pa.large_string())):
        got, _ = M.minhash_signatures(texts, 32)
        assert (got == expect).all()
    got, _ = M.minhash_signatures(col.slice(5), 32)
    assert (got == expect[5:]).all()


def test_non_ascii_text_normalises_the_same_whole_or_word_by_word(shared_data):
    """A document of mostly non-ASCII words alone is normalised in one pass over its whole text;
    batched with a long ASCII document its few non-ASCII words go word by word: same hashes. The
    code-point pass gives the words the regex gives."""
    import re
    langs = ["ru", "el", "ja", "ar", "hi", "de", "tr"]
    docs = [" ".join((shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:12])
            for lang in langs]
    docs.append("ΟΔΟΣ.Α ΣΑΣ. İstanbul KELVİN \u212a ǅ 𝔘𝔫𝔦 😀x")
    ascii_doc = " ".join(wikitext_words(shared_data)[:5000])
    for d in docs:
        whole = M.word_hashes([d])
        mixed = M.word_hashes([d, ascii_doc])  # few non-ASCII words in the batch: word-by-word path
        assert (mixed[0][:mixed[1][1]] == whole[0]).all()
        pattern = re.compile(r"[^\w\x00-\x7f]+")
        assert M._normalize_non_ascii(d.lower()).decode().split() == pattern.sub(" ", d.lower()).split()


def test_non_ascii_table_gives_the_words_of_lower_and_the_regex(shared_data):
    """The in-place table over UTF-8 bytes gives the words str.lower + the regex give on the whole
    decoded text: real text of many scripts, and the characters the table leaves to str.lower
    (Σ in every context, İ, the Kelvin sign, Ⱥ whose lowercase is longer, astral, a surrogate)."""
    import re
    import xxhash
    pattern = re.compile(r"[^\w\x00-\x7f]+")
    langs = ["ru", "el", "ja", "ar", "hi", "de", "tr", "vi", "ko", "th"]
    docs = [" ".join((shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:40])
            for lang in langs]
    rng = random.Random(5)
    tricky = ["Σ", "ΑΣ", "ΑΣ’Β", "ΟΔΟΣ.Α", "ΣΑΣ.", "İstanbul", "\u212a", "Ⱥb", "ǅ", "𝔘𝔫𝔦", "😀x", "’", "\u0301",
              "ẞ", "\ud800", "Ab", "x"]
    docs += ["".join(rng.choice(tricky) + rng.choice([" ", "", "-"]) for _ in range(60)) for _ in range(20)]
    for d in docs:
        raw = d.encode("utf-8", "surrogatepass").translate(M._ASCII_TABLE)
        ref = pattern.sub(" ", raw.decode("utf-8", "surrogatepass").lower()).encode("utf-8", "surrogatepass")
        words = ref.translate(M._ASCII_TABLE).split()
        h, off = M.word_hashes([d])
        assert h.tolist() == [xxhash.xxh3_64_intdigest(w) for w in words], d[:80]

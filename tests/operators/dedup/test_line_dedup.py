"""line_dedup: map -> (engine-style shuffle) -> reduce -> apply on constructed and real text."""
from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from engine.documents import KEY, make_batch
from engine.registry import get_operator
from operators.dedup.line_dedup import WHITESPACE, LineDedup, _drop_lines
from operators.text_norm import normalize_line
from support import ccnet_reference, run_global_operator, serial_map


def shard_batch(shard: int, texts: list[str | None]) -> pa.RecordBatch:
    keys = np.array([(shard << 32) | i for i in range(len(texts))], dtype=np.uint64)
    return make_batch({"id": [f"s{shard}-{i}" for i in range(len(texts))], "text": texts,
                       KEY: pa.array(keys, pa.uint64())})


def run(shards: list[list[str | None]], tmp_path, partitions: int = 4, parallel=serial_map, **params):
    """Run the three phases exactly as the engine does; returns (results per shard, stats)."""
    op = pickle.loads(pickle.dumps(LineDedup(partitions=partitions, **params)))

    def map_check(shard, table):
        assert table.column("_partition").type == pa.int32()
        parts = table.column("_partition").to_numpy()
        assert parts.min(initial=0) >= 0 and parts.max(initial=0) < partitions

    batches = [shard_batch(s, texts) for s, texts in enumerate(shards)]
    return run_global_operator(op, batches, tmp_path / f"work-{partitions}", parallel, out=tmp_path,
                               map_check=map_check)


def kept_texts(res) -> list[str]:
    return [t for t, k in zip(res.batch.column("text").to_pylist(), res.keep) if k]


def test_registered_and_params():
    assert get_operator("line_dedup") is LineDedup
    with pytest.raises(Exception):
        LineDedup(partitions=4, bogus=1)
    assert LineDedup().num_partitions() == 16


def test_fast_normalisation_equals_definition(shared_data):
    from operators.text_norm import normalize_text, normalize_text_slow
    texts = [(shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8")[:20000]
             for lang in ("en", "de", "fr", "vi", "ru", "zh", "ja", "ar", "hi", "th", "el", "ko")]
    texts.append("Ça\u0301 \u2028x\r\ty İstanbul ﬁ Ⅻ ① ３ \x00\x1f\x7f\u200b ;\u037e")
    for t in texts:
        assert normalize_text(t) == normalize_text_slow(t)
        assert normalize_text(t).count("\n") == t.count("\n")


def test_batch_normalisation_equals_per_text(shared_data):
    """One pass over a batch (texts joined by "\\n", table applied in numpy) gives every text's lines."""
    import random

    from operators.text_norm import normalize_lines, normalize_lines_batch
    texts = [(shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8")[:5000]
             for lang in ("en", "de", "vi", "ru", "zh", "ar", "el")]
    texts += ["", " ", "\n", "  a  b  \n\n  c ", "ΣΑΣ ΟΔΟΣ\nΣ", "İstanbul x\u2028y\r\nz", "a\u0301\u0327b",
              "\u00a0\u1680x\u200by\t\x0b\x0c", "x ", " x", "\U0001F600 e\u0301", "plain ascii,  only \n 12 "]
    rng = random.Random(3)
    texts += ["".join(rng.choice("aé Σς\n\t .,1١\u0301\u200b\u00a0İß\r") for _ in range(rng.randint(0, 30)))
              for _ in range(300)]
    for batch in (texts, texts[-300:], [t for t in texts if t.isascii()], [], [""]):
        lines, counts = normalize_lines_batch(batch)
        assert lines == [ln for t in batch for ln in normalize_lines(t)]
        assert counts.tolist() == [len(normalize_lines(t)) for t in batch]


def test_map_rows_are_line_hashes_of_each_text():
    """map hashes the lines of the whole batch in one pass: the rows `line_hashes` gives per text."""
    from operators.dedup.line_dedup import line_hashes
    texts = ["alpha line one\nShared, line!\n\n  x  ", None, "", "Ça\u0301 ΟΔΟΣ\n--\nb", "one"]
    for min_chars in (0, 3):
        out = LineDedup(partitions=4, min_line_chars=min_chars).map(shard_batch(0, texts))
        want = [(i, line, h) for i, t in enumerate(texts) if t
                for line, h in zip(*line_hashes(t, max(1, min_chars)))]
        got = zip(out.column("key").to_pylist(), out.column("line").to_pylist(), out.column("hash").to_pylist())
        assert list(got) == want
        assert out.column("id").to_pylist() == [f"s0-{i}" if k == 0 or want[k - 1][0] != i else None
                                                for k, (i, _, _) in enumerate(want)]


def test_normalisation_like_ccnet():
    assert normalize_line("  Héllo,   WORLD! 2024 ") == "hello world 0000"
    assert normalize_line("Ça coûte 12,50 €.") == "ca coute 0000"
    assert normalize_line("---") == ""


def test_first_occurrence_across_shards_and_within_doc(tmp_path):
    shards = [
        ["alpha line one\nshared line here\nunique zero", "Shared line, HERE!\nother"],
        ["shared line here\nbeta\nbeta\n\nbeta 1", "only dups: shared line here\nunique zero"],
        [None, "unique zero", ""],
    ]
    res, stats = run(shards, tmp_path)
    s0, s1, s2 = res
    # shard 0 doc 0 owns "shared line here" and "unique zero"
    assert s0.batch.column("text").to_pylist()[0] == "alpha line one\nshared line here\nunique zero"
    # doc 1 of shard 0: normalised duplicate of an earlier line is removed
    assert s0.batch.column("text").to_pylist()[1] == "other"
    # shard 1 doc 0: cross-shard dup removed, in-doc "beta" repeat removed, blank line kept,
    # "beta 1" normalises to "beta 0": a different line
    assert s1.batch.column("text").to_pylist()[0] == "beta\n\nbeta 1"
    assert s1.batch.column("text").to_pylist()[1] == "only dups: shared line here"
    # shard 2: null text kept, doc made only of a duplicate dropped, empty doc kept
    assert s2.keep.tolist() == [True, False, True]
    assert s2.reasons[1] == "all_lines_duplicate"
    assert s2.batch.column("text").to_pylist()[0] is None
    # CCNet length columns
    b = s1.batch
    assert b.column("line_dedup_original_nlines").to_pylist()[0] == 5
    assert b.column("line_dedup_nlines").to_pylist()[0] == 3
    assert b.column("line_dedup_original_length").to_pylist()[0] == len(shards[1][0])
    assert b.column("line_dedup_length").to_pylist()[0] == len("beta\n\nbeta 1")
    assert s2.batch.column("line_dedup_length").to_pylist() == [0, 0, 0]
    # removed: shard0 doc1 line0; shard1 doc0 lines 0, 2; shard1 doc1 line1; shard2 doc1 line0
    # ("only dups: shared line here" is a distinct line)
    assert stats["lines_removed"] == 5
    assert stats["docs_with_removed_lines"] == 4


def test_min_line_chars(tmp_path):
    shards = [["ok\nlong enough line"], ["ok\nlong enough line\nnew"]]
    res, _ = run(shards, tmp_path, min_line_chars=5)
    assert res[1].batch.column("text").to_pylist() == ["ok\nnew"]


def test_whitespace_is_pythons():
    assert WHITESPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def test_drop_lines_equals_per_document_definition():
    """The batch rewrite against `"\\n".join(lines not dropped)` per document, lines past the end included."""
    rng = np.random.default_rng(7)
    alphabet = ["a", "b", " ", "\n", "\n\n", "\u3000", "\x1f", "\u200b", "é", "\r"]
    docs, lines, lo, hi = [], [], [], []
    for _ in range(2000):
        t = "".join(rng.choice(alphabet, rng.integers(1, 30)))
        drop = sorted(set(rng.integers(0, t.count("\n") + 3, rng.integers(1, 6)).tolist()))  # some past the end
        docs.append(t)
        lo.append(len(lines))
        lines += drop
        hi.append(len(lines))
    text = pa.array(["padding", *docs]).slice(1)
    out, kept = _drop_lines(text, np.array(lo), np.array(hi), np.array(lines, np.uint32))
    want = []
    for t, a, b in zip(docs, lo, hi):
        drop = set(lines[a:b])
        want.append([ln for i, ln in enumerate(t.split("\n")) if i not in drop])
    assert out.to_pylist() == ["\n".join(w) for w in want]
    assert kept.tolist() == [len(w) for w in want]


def test_document_left_with_unicode_whitespace_is_dropped(tmp_path):
    res, _ = run([["a long shared line\nanother shared one"], ["a long shared line\n\u3000\u2003"],
                  ["a long shared line\n\u200b"]], tmp_path)
    assert res[1].keep.tolist() == [False]             # U+3000 and U+2003 are whitespace to str.strip
    assert res[2].keep.tolist() == [True]              # U+200B is not
    assert res[2].batch.column("text").to_pylist() == ["\u200b"]


def wiki_docs(shared_data, n: int) -> list[str]:
    lines = (shared_data / "text" / "wikitext-2" / "valid.txt").read_text().split("\n")
    lines = [ln for ln in lines if ln.strip()][:n * 6]
    return ["\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)]


def test_real_text_deterministic_across_partitions(shared_data, tmp_path):
    docs = [d["text"] for d in ccnet_reference(shared_data)]
    wiki = wiki_docs(shared_data, 60)
    # shard 1 repeats shard 0's documents (reordered and mixed with wiki paragraphs)
    s0 = docs[:10] + wiki[:30]
    s1 = wiki[20:60] + docs[5:20] + docs[:3]
    r1, st1 = run([s0, s1], tmp_path, partitions=1)
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as pool:                # reduce tasks pickled to other processes
        r7, st7 = run([s0, s1], tmp_path, partitions=7, parallel=lambda fn, items: list(pool.map(fn, items)))
    for a, b in zip(r1, r7):
        assert a.batch.column("text").to_pylist() == b.batch.column("text").to_pylist()
        assert a.keep.tolist() == b.keep.tolist()
    assert st1["lines_removed"] == st7["lines_removed"] > 0
    # shard 0 is untouched where its docs are internally unique; copies in shard 1 are dropped
    kept1 = r1[1].keep
    assert not kept1[-3:].any()                       # exact copies of shard 0 docs 0..2
    assert set(r1[1].reasons[~kept1]) == {"all_lines_duplicate"}
    assert not kept1[:10].any()                       # wiki[20:30] already in shard 0
    assert kept1[10:40].all()                         # wiki[30:60] first seen here
    # the invariant: over the whole output, no normalised (non-empty) line appears twice
    seen = set()
    for r in r7:
        for t in kept_texts(r):
            for line in t.split("\n"):
                n = normalize_line(line)
                if n:
                    assert n not in seen
                    seen.add(n)
    # chars before/after are consistent
    b = r1[0].batch
    assert (np.array(b.column("line_dedup_length").to_pylist())
            <= np.array(b.column("line_dedup_original_length").to_pylist())).all()


def test_partitions_and_min_line_chars_checked():
    with pytest.raises(ValueError, match="partitions"):
        LineDedup(partitions=0)
    with pytest.raises(ValueError, match="min_line_chars"):
        LineDedup(min_line_chars=-1)
    assert LineDedup(partitions=1, min_line_chars=0).params.partitions == 1

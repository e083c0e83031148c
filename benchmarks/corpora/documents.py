"""Documents of real text for benchmarks and tests that start from documents rather than files."""
from __future__ import annotations

import random

from benchmarks.corpora.text_pools import Pools


def docs_from_text(n: int, size_bytes: int = 2000, seed: int = 0, languages: list[str] | None = None) -> list[str]:
    """n distinct documents of real sentences, each about size_bytes (UTF-8) long, in paragraphs.

    Languages rotate over `languages` (default: English only); sentences are drawn without repeats
    until a language's pool is exhausted, so documents are distinct, not copies.
    """
    langs = languages or ["en"]
    pools = Pools(seed)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pool = pools.get(langs[i % len(langs)])
        paras, size, cur = [], 0, []
        while size < size_bytes:
            s = pool.take(1)[0]
            cur.append(s)
            size += len(s.encode()) + 1
            if len(cur) >= rng.randint(2, 4):
                paras.append(" ".join(cur))
                cur = []
        if cur:
            paras.append(" ".join(cur))
        out.append("\n".join(paras))
    return out


def batch_of(texts: list[str], ids: list[str] | None = None):
    """A document batch (engine schema) holding texts, with ids doc-000000... unless given."""
    from engine.documents import make_batch

    ids = ids or [f"doc-{i:06d}" for i in range(len(texts))]
    return make_batch({"id": ids, "url": [f"https://bench.example/{i}" for i in ids], "text": texts})


def edit_words(words: list[str], frac: float, rng: random.Random, vocab: list[str], min_edits: int = 0) -> list[str]:
    """A near-duplicate: about `frac` of the words replaced, deleted or inserted (at least `min_edits`)."""
    w = list(words)
    for _ in range(max(min_edits, int(len(words) * frac))):
        j = rng.randrange(len(w))
        op = rng.random()
        if op < 0.4:
            w[j] = rng.choice(vocab)
        elif op < 0.7 and len(w) > 1:
            del w[j]
        else:
            w.insert(j, rng.choice(vocab))
    return w

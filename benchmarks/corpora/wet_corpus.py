"""WET shards (warcinfo + `conversion` records, text/plain) of real texts, repeated and varied.

The base documents are the main texts of the real pages, lingua sentences grouped into documents
per language, and the WikiText-2 articles. Copies after the first lose a few lines and gain real
paragraphs, or (near duplicates) gain one sentence.
"""
from __future__ import annotations

import functools
import io
import os
import random
import re
from pathlib import Path

from benchmarks.corpora.cache import cached
from benchmarks.corpora.real_pages import page_texts
from benchmarks.corpora.shards import shard_files, shuffled_rounds
from benchmarks.corpora.text_pools import Pools, lingua_languages, lingua_sentences, wikitext_articles
from benchmarks.corpora.warc_records import copy_url, record_id, warc_shards, write_warcinfo

SOFTWARE = "decant benchmarks/corpora/wet_corpus.py"


def _lingua_documents(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """Runs of 8-25 consecutive lingua sentences per language, a few sentences per line."""
    docs = []
    for lang in lingua_languages():
        sents = list(lingua_sentences(lang))
        i = 0
        while i < len(sents):
            k = rng.randint(8, 25)
            chunk = sents[i:i + k]
            i += k
            if len(chunk) >= 5:
                lines, j = [], 0
                while j < len(chunk):
                    m = rng.randint(1, 3)
                    lines.append(" ".join(chunk[j:j + m]))
                    j += m
                docs.append((f"https://{lang}.news.example/{i // k:05d}", "2019-06-01T00:00:00Z", lang,
                             "\n".join(lines)))
    return docs


@functools.cache
def base_texts() -> tuple[tuple[str, str, str, str], ...]:
    """(url, date, lang, text) of every real base document for WET corpora."""
    docs = list(page_texts()) + _lingua_documents(random.Random(7))
    for title, text in wikitext_articles():
        slug = re.sub(r"\W+", "_", title)[:60]
        docs.append((f"https://en.wikipedia.org/wiki/{slug}", "2016-09-01T00:00:00Z", "en", f"{title}\n{text}"))
    return tuple(docs)


def vary_text(text: str, lang: str, copy: int, pools: Pools, rng: random.Random, near_dup_rate: float) -> str:
    """The text; copies after the first keep most lines and gain real paragraphs (near duplicates:
    one sentence more)."""
    if copy == 0:
        return text
    lines = text.split("\n")
    pool = pools.get(lang)
    if rng.random() < near_dup_rate:
        lines.insert(rng.randrange(len(lines) + 1), pool.take(1)[0])
        return "\n".join(lines)
    kept = [ln for ln in lines if rng.random() > 0.2] or lines[:1]
    for para in pool.paragraphs(rng, (2, 6), (1, 4)):
        kept.insert(rng.randrange(len(kept) + 1), para)
    return "\n".join(kept)


def _conversion(w, url: str, text: str, date: str, rid: str, refers_to: str | None = None):
    body = text.encode("utf-8")
    headers = {"WARC-Record-ID": rid, "WARC-Date": date}
    if refers_to:
        headers["WARC-Refers-To"] = refers_to
    return w.create_warc_record(url, "conversion", payload=io.BytesIO(body), warc_content_type="text/plain",
                                length=len(body), warc_headers_dict=headers)


def _build(folder: Path, docs: int, shards: int, seed: int, near_dup_rate: float) -> None:
    base = base_texts()
    rng = random.Random(seed)
    pools = Pools(seed + 1)
    draws = shuffled_rounds(len(base), docs, rng)
    for s, n, w in warc_shards(folder, docs, shards, ".warc.wet.gz", SOFTWARE):
        i, copy = next(draws)
        url, date, lang, text = base[i]
        body = vary_text(text, lang, copy, pools, rng, near_dup_rate)
        w.write_record(_conversion(w, copy_url(url, copy), body, date, record_id(seed, "wet", s, n),
                                   record_id(seed, "warc", s, n)))


def wet_corpus(docs: int = 6000, shards: int = 4, seed: int = 0, near_dup_rate: float = 0.15) -> list[str]:
    """Paths of `shards` gzipped WET files holding `docs` real-text conversion records (cached)."""
    folder = cached("wet", _build, docs=docs, shards=shards, seed=seed, near_dup_rate=near_dup_rate)
    return shard_files(folder, ".warc.wet.gz")


def write_wet(path: str | os.PathLike, texts: list[str], urls: list[str] | None = None,
              date: str = "2019-06-01T00:00:00Z") -> str:
    """Write texts as one gzipped WET file (warcinfo + one conversion record per text) at path."""
    from warcio.warcwriter import WARCWriter

    path = str(path)
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        write_warcinfo(w, os.path.basename(path), SOFTWARE)
        for i, text in enumerate(texts):
            url = urls[i] if urls else f"https://bench.example/{os.path.basename(path)}/{i}"
            w.write_record(_conversion(w, url, text, date, record_id(path, i)))
    return path

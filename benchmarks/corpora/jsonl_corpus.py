"""JSONL.gz shards of real multilingual text with ids, for jobs that start from documents (the
scaling benchmark, the Ray executor's tests).

About a third of the documents are English Wikipedia paragraphs (some of them repeated across
shards, so that line dedup has work), the rest groups of 4-12 consecutive sentences of one language
from lingua, the languages taking turns.
"""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from benchmarks.corpora.shared_data import shared_data
from benchmarks.corpora.text_pools import lingua_sentences, wikitext_files
from operators.lm_train import detokenize_wikitext

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ru", "tr", "fi"]


def _wiki_paragraphs() -> list[str]:
    """WikiText-2 paragraphs over 200 characters, valid then test, as plain text."""
    paras = []
    for p in reversed(wikitext_files()):
        if not p.exists():
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if len(line) > 200 and not line.startswith("="):
                paras.append(detokenize_wikitext(line))
    return paras


def jsonl_corpus(folder: str | Path, shards: int = 4, docs_per_shard: int = 500, seed: int = 0) -> list[str]:
    """Write `shards` files corpus-<shard>.jsonl.gz into folder and return their paths; the same
    arguments write the same documents."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sentences = {lang: list(lingua_sentences(lang)) for lang in LANGUAGES if lingua_sentences(lang)}
    wiki = _wiki_paragraphs()
    if not sentences and not wiki:
        raise FileNotFoundError(f"no shared text under {shared_data()}/text")
    langs = sorted(sentences)
    repeated = wiki[:20]
    paths = []
    for s in range(shards):
        path = folder / f"corpus-{s:03d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
            for i in range(docs_per_shard):
                r = rng.random()
                if wiki and r < 0.30:
                    k = rng.randint(1, 4)
                    start = rng.randrange(0, max(1, len(wiki) - k))
                    text = "\n".join(wiki[start:start + k])
                elif wiki and r < 0.36:
                    text = "\n".join(rng.sample(repeated, 2))
                else:
                    lang = langs[(s * docs_per_shard + i) % len(langs)]
                    pool = sentences[lang]
                    start = rng.randrange(0, max(1, len(pool) - 12))
                    text = "\n".join(pool[start:start + rng.randint(4, 12)])
                f.write(json.dumps({"id": f"s{s}-d{i}", "text": text, "url": f"https://example.org/{s}/{i}"},
                                   ensure_ascii=False) + "\n")
        paths.append(str(path))
    return paths

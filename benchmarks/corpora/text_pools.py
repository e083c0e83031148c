"""Real sentences and articles to build documents from: lingua's sentences per language and the
WikiText-2 articles, and pools that hand them out without repeats."""
from __future__ import annotations

import functools
import random
import re
from pathlib import Path

from benchmarks.corpora.shared_data import shared_data
from operators.lm_train import detokenize_wikitext

@functools.cache
def lingua_sentences(lang: str) -> tuple[str, ...]:
    """lingua's sentences of one language (none when it has no file for it)."""
    p = shared_data() / "text" / "lingua" / f"{lang}.txt"
    if not p.exists():
        return ()
    return tuple(s.strip() for s in p.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip())


@functools.cache
def lingua_languages() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (shared_data() / "text" / "lingua").glob("*.txt")))


def wikitext_files() -> list[Path]:
    """WikiText-2's test and valid files (tokenised English Wikipedia), in that order."""
    return [shared_data() / "text" / "wikitext-2" / name for name in ("test.txt", "valid.txt")]


@functools.cache
def wikitext_raw() -> str:
    """The tokenised text of WikiText-2's test and valid files, one after the other."""
    return "".join(p.read_text(encoding="utf-8") for p in wikitext_files())


@functools.cache
def wikitext_articles() -> tuple[tuple[str, str], ...]:
    """(title, text) of every WikiText-2 article in test + valid; paragraphs joined by newlines."""
    out: list[tuple[str, str]] = []
    for p in wikitext_files():
        if not p.exists():
            continue
        title, paras = None, []
        for raw in p.read_text(encoding="utf-8").splitlines():
            s = raw.strip()
            m = re.fullmatch(r"= ([^=].*?) =", s)
            if m:
                if title and paras:
                    out.append((title, "\n".join(paras)))
                title, paras = detokenize_wikitext(m.group(1)), []
            elif s and not s.startswith("="):
                paras.append(detokenize_wikitext(s))
        if title and paras:
            out.append((title, "\n".join(paras)))
    return tuple(out)


@functools.cache
def english_sentences() -> tuple[str, ...]:
    """Real English sentences: WikiText-2 paragraphs split at sentence ends, then lingua en."""
    sents: list[str] = []
    for _, text in wikitext_articles():
        for para in text.split("\n"):
            sents.extend(s.strip() for s in re.split(r"(?<=[.!?]) (?=[A-Z\"])", para) if len(s.strip()) > 20)
    return tuple(sents) + lingua_sentences("en")


class SentencePool:
    """Hands out real sentences of one language in a fixed pseudo-random order, so that consecutive
    draws are distinct until the pool is exhausted (then it wraps around). Languages lingua does not
    have get English."""

    def __init__(self, lang: str, seed: int) -> None:
        sents = english_sentences() if lang == "en" else lingua_sentences(lang)
        if not sents:
            sents = english_sentences()
        self.sents = list(sents)
        random.Random(f"{seed}:{lang}").shuffle(self.sents)
        self.i = 0

    def take(self, k: int) -> list[str]:
        out = []
        for _ in range(k):
            out.append(self.sents[self.i % len(self.sents)])
            self.i += 1
        return out

    def paragraphs(self, rng: random.Random, npar: tuple[int, int], nsent: tuple[int, int]) -> list[str]:
        """npar paragraphs (a random count in the range) of nsent sentences each."""
        return [" ".join(self.take(rng.randint(*nsent))) for _ in range(rng.randint(*npar))]


class Pools:
    """One SentencePool per language, made on first use, all from the same seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pools: dict[str, SentencePool] = {}

    def get(self, lang: str) -> SentencePool:
        if lang not in self.pools:
            self.pools[lang] = SentencePool(lang, self.seed)
        return self.pools[lang]

"""The bundled per-language settings of the rule families: one table per family, under the job's settings.

The rules were written for English. `languages.json` (beside this module) gives, per family, the
settings a language needs to be judged on the same terms; a row of a language is judged with the
family defaults, then the table's entry for its language, then what the job file sets for the
family, then the job's `per_language` entry (each later one wins, name by name). Its entries:

- gopher_quality `stop_words`: Gopher's rule wants 2 occurrences of 8 frequent English function
  words (the, be, to, of, and, that, have, with). For every other language: the words (as the
  rule's whitespace or ICU words, lowercased) found in the most training documents among the stop
  words of stopwords-iso (the `stopwordsiso` package), else among all words with a letter (as
  FineWeb-2 takes its stop words from word frequencies); at least 8, and more, up to 40, until 98%
  of the training documents hold 2 of them (where particles are written into the word, as in
  Korean, single stop words are rarer). A language where 40 do not reach that skips the rule.
- gopher_quality `min_mean_word_length` / `max_mean_word_length`: Gopher's English bounds 3 and 10
  scaled by the language's median mean word length over English's (4.7), only ever loosened.
- fineweb `short_line_length`: 30 characters scaled by the language's characters per word over
  English's, only ever loosened: 30 characters is ~5 English words, ~9 Chinese characters.
- `skip`: rules that cannot be judged for the language; they are not applied to its rows, and every
  skip is counted in stats.json (`operators.quality.counts`, `skipped.<reason>.<language>`).
  Thai and Lao end sentences without punctuation: C4's sentence count and FineWeb's punctuated-line
  share skip them; C4's terminal-punctuation line filter is off for them.

The derived numbers come from the training slice of the real text in the shared data (the same
lines the perplexity models train on, never the held-out ones the benchmarks judge):
`python -m operators.filters.quality.languages DATA` rewrites the file; a test checks it matches.
"""
from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

TABLE_FILE = Path(__file__).with_name("languages.json")
#: Gopher's English stop words and word-length bounds, and FineWeb's short-line length.
ENGLISH_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]
GOPHER_WORD_LENGTH = (3.0, 10.0)
FINEWEB_SHORT_LINE = 30
#: Stop words per language: at least, at most, and the share of training documents that must hold 2.
STOP_WORDS_MIN, STOP_WORDS_MAX, STOP_WORDS_COVERAGE = len(ENGLISH_STOP_WORDS), 40, 0.98
#: Training sentences per document when measuring a language's words (drawn at random: some sentence
#: files are sorted, and neighbours would share their first words).
SENTENCES_PER_DOC = 8
DOCS_PER_LANGUAGE = 500
#: Languages whose sentences end without punctuation.
UNPUNCTUATED = ("th", "lo")
UNPUNCTUATED_SKIP = ["c4_min_sentences", "fineweb_line_punct_ratio"]


@cache
def language_table() -> dict[str, dict[str, dict[str, Any]]]:
    """{family: {language: {setting: value}}} plus "skip": {language: [reason, ...]} (no "_meta")."""
    data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------ building

def _words(docs: list[str], lang: str) -> list[list[str]]:
    """The words the rules see in each document (whitespace or ICU)."""
    import pyarrow as pa

    from operators.filters.quality.segmentation import SEGMENTED_LANGUAGES
    from operators.filters.quality.settings import NO_SPACE_LANGUAGES
    from operators.filters.quality.text_batch import TextBatch

    batch = pa.RecordBatch.from_pydict({"text": docs, "language": [lang] * len(docs)})
    words = TextBatch(batch, NO_SPACE_LANGUAGES, segmented_languages=list(SEGMENTED_LANGUAGES)).words
    out: list[list[str]] = [[] for _ in docs]
    for w, r in zip(words.values.to_pylist(), words.rows.tolist()):
        out[r].append(w)
    return out


def measure(docs: list[str], lang: str) -> dict[str, Any]:
    """Median mean word length, characters per word, and each document's lowercased words."""
    per_doc = _words(docs, lang)
    means, chars = [], []
    for doc, words in zip(docs, per_doc):
        real = [w for w in words if not all(unicodedata.category(c)[0] in "PS" for c in w)]
        if real:
            means.append(sum(map(len, real)) / len(real))
            chars.append(len(doc) / len(words))
    return {"mean_word_length": float(np.median(means)), "chars_per_word": float(np.median(chars)),
            "words": [[w.lower() for w in ws] for ws in per_doc]}


def stop_words(docs: list[list[str]], lang: str) -> tuple[list[str] | None, str, float]:
    """The language's stop words (None: none reach the coverage), their source and their coverage."""
    import stopwordsiso

    df = Counter(w for words in docs for w in set(words))
    sources = [("frequency", None)]
    if stopwordsiso.has_lang(lang):
        sources.insert(0, ("stopwords-iso", {w.lower() for w in stopwordsiso.stopwords(lang)}))
    best: tuple[list[str] | None, str, float] = (None, "", 0.0)
    for source, candidates in sources:
        ranked = sorted((w for w in df if any(c.isalpha() for c in w) and (candidates is None or w in candidates)),
                        key=lambda w: (-df[w], w))
        for k in range(STOP_WORDS_MIN, STOP_WORDS_MAX + 1):
            chosen = set(ranked[:k])
            coverage = float(np.mean([sum(w in chosen for w in words) >= 2 for words in docs]))
            if coverage >= STOP_WORDS_COVERAGE:
                return ranked[:k], source, round(coverage, 3)
            if k >= len(ranked):
                break
        if coverage > best[2]:
            best = (None, source, round(coverage, 3))
    return best


def build(data: Path) -> dict[str, Any]:
    """The table from the training slice of every language's text (see the module docstring)."""
    from operators.lm_bundled import language_text, languages

    texts = {lang: language_text(data, lang) for lang in languages(data)}
    measured = {}
    for lang, t in texts.items():
        n = t.train_counts.get("lingua", 0) + t.train_counts.get("ud", 0)  # WikiText would outweigh them
        rng = np.random.default_rng(0)
        docs = ["\n".join(t.train[j] for j in rng.integers(0, n, SENTENCES_PER_DOC)) for _ in range(DOCS_PER_LANGUAGE)]
        measured[lang] = measure(docs, lang)
    en = measured["en"]
    gq: dict[str, dict[str, Any]] = {}
    fw: dict[str, dict[str, Any]] = {}
    c4: dict[str, dict[str, Any]] = {}
    skip: dict[str, list[str]] = {}
    meta: dict[str, Any] = {}
    for lang, m in sorted(measured.items()):
        entry: dict[str, Any] = {}
        coverage = None
        if lang != "en":
            words, source, coverage = stop_words(m["words"], lang)
            if words is None:
                skip[lang] = ["gopher_stop_words"]
            else:
                entry.update(stop_words=words, stop_words_languages=[lang])
        else:
            source = "Gopher"
        scale = m["mean_word_length"] / en["mean_word_length"]
        lo = round(min(GOPHER_WORD_LENGTH[0], GOPHER_WORD_LENGTH[0] * scale), 1)
        hi = round(max(GOPHER_WORD_LENGTH[1], GOPHER_WORD_LENGTH[1] * scale), 1)
        if lo != GOPHER_WORD_LENGTH[0]:
            entry["min_mean_word_length"] = lo
        if hi != GOPHER_WORD_LENGTH[1]:
            entry["max_mean_word_length"] = hi
        if entry:
            gq[lang] = entry
        short = int(round(min(FINEWEB_SHORT_LINE, FINEWEB_SHORT_LINE * m["chars_per_word"] / en["chars_per_word"])))
        if short != FINEWEB_SHORT_LINE:
            fw[lang] = {"short_line_length": short}
        meta[lang] = {"mean_word_length": round(m["mean_word_length"], 2),
                      "chars_per_word": round(m["chars_per_word"], 2), "stop_words_from": source,
                      "stop_words_coverage": coverage}
    for lang in UNPUNCTUATED:
        skip[lang] = sorted(set(skip.get(lang, [])) | set(UNPUNCTUATED_SKIP))
        c4[lang] = {"filter_no_terminal_punct": False}
    return {"_meta": {"built_by": "python -m operators.filters.quality.languages DATA (see its docstring)",
                      "measured": meta},
            "gopher_quality": gq, "fineweb": fw, "c4": c4, "skip": skip}


def write(table: dict[str, Any], path: Path = TABLE_FILE) -> None:
    path.write_text(json.dumps(table, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(build(Path(sys.argv[1])))

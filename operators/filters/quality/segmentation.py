"""Words of languages written without spaces, from ICU's dictionary-based word breaker (icu4py).

ICU (the Unicode consortium's library, as browsers and Lucene use it) breaks Chinese and Japanese
with its CJ dictionary and Thai, Lao, Khmer and Burmese with theirs. Its segments are words,
punctuation and whitespace; to make them words as the rules count them in spaced languages
("word," is one whitespace token), whitespace segments are dropped and a segment without a letter,
mark or digit that follows a word directly is glued to it ("治疗", "，" -> "治疗，"). Each word keeps
the document and the line (split on "\\n", as `TextBatch.raw_lines`) it came from.

The breaker itself runs once per document (a Python call into ICU); everything after it is Arrow.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Languages whose words ICU's dictionaries find (ISO 639-1/3 codes as lid.176 gives them).
SEGMENTED_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my", "yue", "wuu")
#: ICU locale per language (ICU picks the dictionary from the script; the locale only names it).
ICU_LOCALE = {"yue": "zh", "wuu": "zh"}
WORDLIKE_RE = r"[\pL\pM\pN]"


def segment(texts: list[str], languages: list[str]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(words, document index, line index within the document) of every text, in order."""
    from icu4py.breakers import WordBreaker

    tokens: list[str] = []
    docs: list[int] = []
    for i, (text, lang) in enumerate(zip(texts, languages)):
        if not text:
            continue
        parts = list(WordBreaker(text, ICU_LOCALE.get(lang, lang)))
        tokens += parts
        docs += [i] * len(parts)
    if not tokens:
        return pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64)
    tok = pa.array(tokens, pa.string())
    doc = np.asarray(docs, np.int64)
    newlines = pc.count_substring(tok, "\n").to_numpy(zero_copy_only=False).astype(np.int64)
    # line of each token: newlines before it in its document
    before = np.cumsum(newlines) - newlines
    first = np.ones(len(doc), dtype=bool)
    first[1:] = doc[1:] != doc[:-1]
    line = before - np.maximum.accumulate(np.where(first, before, 0))
    space = pc.utf8_is_space(tok).to_numpy(zero_copy_only=False).astype(bool)
    wordlike = pc.match_substring_regex(tok, WORDLIKE_RE).to_numpy(zero_copy_only=False).astype(bool)
    glued = np.zeros(len(tok), dtype=bool)
    glued[1:] = ~wordlike[1:] & ~space[1:] & ~space[:-1] & ~first[1:]
    kept = ~space
    start = kept & ~glued
    group = np.cumsum(start)[kept] - 1
    counts = np.bincount(group, minlength=int(start.sum()))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    words = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), tok.filter(pa.array(kept))), "")
    return words, doc[start], line[start]

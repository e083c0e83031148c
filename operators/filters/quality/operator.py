"""Heuristic quality rules: Gopher quality, Gopher repetition, C4 and FineWeb, with their signals.

Everything is computed for a whole batch at once with Arrow compute kernels (split into words,
lines and paragraphs, regex tests) and numpy (segment sums with `bincount`, n-gram hashing and
sort-based duplicate detection over the concatenated words of the batch); no Python loop runs
per document or per word.

Rules, in the fixed order a drop reason is chosen (the first failing rule wins):
1. gopher_repetition (Rae et al. 2021, table A1; datatrove's GopherRepetitionFilter):
   dup line frac > 0.3, dup paragraph frac > 0.3, dup line char frac > 0.2, dup paragraph char frac
   > 0.2, top n-gram char frac > {2: .20, 3: .18, 4: .16}, dup n-gram char frac >
   {5: .15, 6: .14, 7: .13, 8: .12, 9: .11, 10: .10}.
   Reasons gopher_dup_line_frac, gopher_dup_para_frac, gopher_dup_line_char_frac,
   gopher_dup_para_char_frac, gopher_top_<n>gram, gopher_dup_<n>gram.
   Lines are the non-blank lines (compared stripped); paragraphs are separated by blank lines;
   char fractions are over len(text). N-gram fractions count word characters (no spaces) over the
   document's word characters, as RedPajama-V2 does; the top n-gram counts only when it occurs
   at least twice; the dup n-gram fraction covers the words of every repeat occurrence (not the
   first) of a repeated n-gram, overlaps counted once.
2. gopher_quality: non-symbol words in [50, 100000] (gopher_min_words / gopher_max_words), mean
   length of those words in [3, 10] (gopher_mean_word_length), '#' and ellipsis ('...', '…') per
   word <= 0.1 each (gopher_symbol_word_ratio), non-blank lines starting with a bullet <= 0.9
   (gopher_bullet_lines), non-blank lines ending with an ellipsis <= 0.3 (gopher_ellipsis_lines),
   words with a letter >= 0.8 (gopher_alpha_words), at least 2 stop words among the, be, to, of,
   and, that, have, with (case-insensitive; gopher_stop_words).
3. c4 (Raffel et al. 2020; datatrove's C4QualityFilter): per line (stripped, citation marks such
   as [1], [edit] removed): drop lines with a word longer than 1000 chars, lines not ending in
   terminal punctuation (or ending in '...'), lines with < 3 words, lines with "javascript",
   lines with cookie/policy boilerplate; the document goes on "lorem ipsum" (c4_lorem_ipsum) or
   '{' (c4_curly_bracket) in a line that survived the earlier line tests, and on fewer than 5
   sentences in the cleaned text (c4_min_sentences). The kept lines, joined by "\\n", replace
   `text` (only when `c4_remove_lines`).
4. fineweb (Penedo et al. 2024; datatrove's FineWebQualityFilter), on the text after C4 cleaning:
   no non-blank line (fineweb_empty), lines ending in terminal punctuation >= 0.12
   (fineweb_line_punct_ratio), lines of <= 30 chars <= 0.67 (fineweb_short_line_ratio),
   characters in duplicated lines / non-newline characters <= 0.01 (fineweb_dup_line_char_ratio),
   newlines per word <= 0.3 (fineweb_list_ratio).

Languages: the word rules assume whitespace-tokenised text. For rows whose `language` is one of
`no_space_languages` (zh, ja, th, lo, km, my, bo, yue, wuu by default), the word-based decisions
(Gopher word count, mean word length, symbol ratio, alpha words, stop words, top/dup n-grams, C4's
minimum words per line, FineWeb's list ratio) are not applied; the line, paragraph and character
rules still are (terminal punctuation includes 。！？). The stop-word rule applies only to
`stop_words_languages` (en by default; a row whose language is null/unknown is not checked for
stop words). Without a `language` column every rule applies to every row. `languages`, when set,
limits the whole filter to those languages (other rows pass, their text untouched by C4).
Signals are computed for every row regardless, and `decide` works from the signal columns alone.

Words are whitespace tokens; "non-symbol" words have a character outside Unicode P*/S*; the
symbol ratio divides by the non-symbol word count. N-grams are compared by 64-bit hashes of the
word ids (a collision is ~2^-64 per pair), and each n-gram size only looks at positions whose
shorter n-gram already repeated, so repetitive-free text costs little.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator

from engine.documents import LANGUAGE, TEXT, set_column
from engine.operator import Filter, Params, Resources, register

RuleName = Literal["gopher", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
ORDER = ("gopher_repetition", "gopher_quality", "c4", "fineweb")

STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]
NO_SPACE_LANGUAGES = ["zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"]
POLICY = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]

# Sentence-final punctuation of many scripts (FineWeb's line test; C4 sentence count).
_TERMINAL = ".!?\u0589\u061f\u06d4\u0700\u0701\u0702\u07f9\u0964\u0965\u104a\u104b\u1362\u1367\u1368" \
            "\u166e\u1803\u1809\u203c\u203d\u2047\u2048\u2049\u2e2e\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7" \
            "\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\u2026"
_TERM_CLASS = "[" + "".join("\\" + c if c in ".!?" else c for c in _TERMINAL) + "]"
_CLOSERS = "[\"'\u201d\u2019\u00bb)\\]]*"
FINEWEB_END_RE = _TERM_CLASS + _CLOSERS + r"$"
# C4's END_PUNCTUATION (. ? ! " ') plus the CJK full stops and curly closing quotes.
C4_END_RE = "[.?!\"'\u3002\uff01\uff1f\u201d\u2019]$"
# A sentence ends at terminal punctuation followed by a space or the end; CJK full stops need no
# space after them (Chinese and Japanese put none between sentences).
_CJK_TERM = "\u3002\uff01\uff1f\uff61"
SENTENCE_END_RE = "(?:" + _TERM_CLASS + "+" + _CLOSERS + r"(?:\s|$)|[" + _CJK_TERM + "]+" + _CLOSERS + ")"
CITATION_RE = r"\[\d*\]|\[edit\]|\[citation needed\]"
BULLET_RE = "^[\u2022\u25cf\u2023\u25e6\u2219\u25aa\\-*]"
ELLIPSIS_END_RE = "(?:\\.\\.\\.|\u2026)$"
SYMBOL_WORD_RE = r"^[\pP\pS]+$"

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_C = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _split(arr: pa.Array, how: str, pattern: str = "") -> tuple[pa.Array, np.ndarray]:
    """Flattened pieces of every row and the row each piece belongs to."""
    if how == "ws":
        lst = pc.utf8_split_whitespace(arr)
    elif how == "regex":
        lst = pc.split_pattern_regex(arr, pattern)
    else:
        lst = pc.split_pattern(arr, pattern)
    parents = pc.list_parent_indices(lst).to_numpy(zero_copy_only=False).astype(np.int64)
    return pc.list_flatten(lst), parents


def _np(a) -> np.ndarray:
    return a.to_numpy(zero_copy_only=False)


def _seg_sum(parents: np.ndarray, w, n: int) -> np.ndarray:
    return np.bincount(parents, weights=w, minlength=n)[:n]


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)
    return r


def _dups(values: pa.Array, parents: np.ndarray) -> np.ndarray:
    """Mask of the pieces that repeat an earlier piece of the same row."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    enc = pc.dictionary_encode(values)
    ids = _np(enc.indices).astype(np.int64)
    key = parents * np.int64(len(enc.dictionary) + 1) + ids
    _, first = np.unique(key, return_index=True)
    dup = np.ones(len(key), dtype=bool)
    dup[first] = False
    return dup


class QualityParams(Params):
    rules: list[RuleName] = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    languages: list[str] | None = None
    no_space_languages: list[str] = NO_SPACE_LANGUAGES
    # gopher quality
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: list[str] = STOP_WORDS
    stop_words_languages: list[str] = ["en"]
    # gopher repetition
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_ngram_char_frac: dict[int, float] = {2: 0.20, 3: 0.18, 4: 0.16}
    dup_ngram_char_frac: dict[int, float] = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    # c4
    c4_remove_lines: bool = True
    c4_filter_no_terminal_punct: bool = True
    c4_min_words_per_line: int = 3
    c4_max_word_length: int = 1000
    c4_remove_citations: bool = True
    c4_filter_javascript: bool = True
    c4_filter_policy: bool = True
    c4_filter_lorem_ipsum: bool = True
    c4_filter_curly_bracket: bool = True
    c4_min_sentences: int = 5
    # fineweb
    fineweb_line_punct_ratio: float = 0.12
    fineweb_short_line_length: int = 30
    fineweb_short_line_ratio: float = 0.67
    fineweb_dup_line_char_ratio: float = 0.01
    fineweb_new_line_ratio: float = 0.3

    @field_validator("rules")
    @classmethod
    def _expand(cls, v):
        out = set()
        for r in v:
            out.update(("gopher_quality", "gopher_repetition") if r == "gopher" else (r,))
        if not out:
            raise ValueError("quality: rules must name at least one rule")
        return [r for r in ORDER if r in out]

    @field_validator("top_ngram_char_frac", "dup_ngram_char_frac")
    @classmethod
    def _ngram_sizes(cls, v):
        for n in v:
            if not 1 <= n <= 50:
                raise ValueError(f"n-gram size {n} out of range 1..50")
        return v


GOPHER_Q_SIGNALS = ("word_count", "mean_word_length", "symbol_word_ratio", "bullet_line_frac",
                    "ellipsis_line_frac", "alpha_word_frac", "stop_word_count")
C4_SIGNALS = ("c4_lines_removed", "c4_sentences", "c4_lorem_ipsum", "c4_curly_bracket")
FINEWEB_SIGNALS = ("fineweb_lines", "fineweb_line_punct_ratio", "fineweb_short_line_ratio",
                   "fineweb_dup_line_char_ratio", "fineweb_newline_word_ratio")


@register
class Quality(Filter):
    name = "quality"
    inputs = (TEXT,)
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = QualityParams

    def output_columns(self) -> tuple[str, ...]:
        p = self.params
        cols: list[str] = []
        if "gopher_repetition" in p.rules:
            cols += ["dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac"]
            cols += [f"top_{n}gram_char_frac" for n in sorted(p.top_ngram_char_frac)]
            cols += [f"dup_{n}gram_char_frac" for n in sorted(p.dup_ngram_char_frac)]
        if "gopher_quality" in p.rules:
            cols += list(GOPHER_Q_SIGNALS)
        if "c4" in p.rules:
            cols += list(C4_SIGNALS)
        if "fineweb" in p.rules:
            cols += list(FINEWEB_SIGNALS)
        return tuple(f"quality_{c}" for c in cols)

    # ------------------------------------------------------------------ compute
    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        p = self.params
        n = batch.num_rows
        text = pc.fill_null(batch.column(TEXT), "")
        if text.type != pa.string():
            text = text.cast(pa.string())
        sig: dict[str, np.ndarray] = {}
        lang = self._languages(batch)
        scope = np.ones(n, dtype=bool) if p.languages is None or lang is None else np.isin(lang, p.languages)
        spaced = np.ones(n, dtype=bool) if lang is None else ~np.isin(lang, p.no_space_languages)
        nchars = _np(pc.utf8_length(text)).astype(np.int64)

        need_words = "gopher_repetition" in p.rules or "gopher_quality" in p.rules
        if need_words:
            words, wpar = _split(pc.utf8_trim_whitespace(text), "ws")
            wlen = _np(pc.utf8_length(words)).astype(np.int64)
            nonempty = wlen > 0
            if not nonempty.all():
                words = words.filter(pa.array(nonempty))
                wpar, wlen = wpar[nonempty], wlen[nonempty]
        if "gopher_repetition" in p.rules:
            self._gopher_repetition(text, nchars, words, wpar, wlen, n, sig)
        if "gopher_quality" in p.rules:
            self._gopher_quality(text, words, wpar, wlen, n, sig)
        if "c4" in p.rules:
            text = self._c4(text, n, sig, spaced, scope)
        if "fineweb" in p.rules:
            self._fineweb(text, n, sig)

        if "c4" in p.rules and p.c4_remove_lines:
            batch = set_column(batch, TEXT, text)
        for name, v in sig.items():
            batch = set_column(batch, f"quality_{name}", v)
        return batch

    @staticmethod
    def _languages(batch: pa.RecordBatch) -> np.ndarray | None:
        if LANGUAGE not in batch.schema.names:
            return None
        return np.array([x or "" for x in batch.column(LANGUAGE).to_pylist()], dtype=object)

    # gopher repetition ---------------------------------------------------------
    def _gopher_repetition(self, text, nchars, words, wpar, wlen, n, sig):
        p = self.params
        for unit, how, pat in (("line", "regex", r"\n+"), ("para", "regex", r"\n\s*\n")):
            pieces, par = _split(text, how, pat)
            pieces = pc.utf8_trim_whitespace(pieces)
            plen = _np(pc.utf8_length(pieces)).astype(np.int64)
            ok = plen > 0
            pieces, par, plen = pieces.filter(pa.array(ok)), par[ok], plen[ok]
            dup = _dups(pieces, par)
            count = _seg_sum(par, None, n)
            frac = _ratio(_seg_sum(par, dup, n), count)
            char_frac = _ratio(_seg_sum(par, plen * dup, n), nchars)
            sig[f"dup_{unit}_frac"] = frac.astype(np.float32)
            sig[f"dup_{unit}_char_frac"] = char_frac.astype(np.float32)

        W = len(wpar)
        total = _seg_sum(wpar, wlen, n)
        cs = np.concatenate([[0], np.cumsum(wlen)])
        counts = np.bincount(wpar, minlength=n)[:n]
        ends = np.cumsum(counts)                        # end offset of each row's words
        row_end = ends[wpar] if W else np.zeros(0, np.int64)
        x = _mix(_np(pc.dictionary_encode(words).indices).astype(np.uint64) + np.uint64(1)) if W else \
            np.zeros(0, np.uint64)
        dmix = _mix(wpar.astype(np.uint64) * _C + np.uint64(7))
        sizes = sorted(set(p.top_ngram_char_frac) | set(p.dup_ngram_char_frac))
        # Candidates: an n-gram can only repeat where its (n-1)-gram prefix repeats, so each size
        # hashes and sorts only the positions whose previous-size n-gram occurred twice or more.
        cand = np.arange(W, dtype=np.int64)
        h = x.copy()                                    # h[j]: hash of words cand[j]..cand[j]+done-1
        done = 1
        for size in sizes:
            ok = cand + size <= row_end[cand] if len(cand) else np.zeros(0, bool)
            cand, h = cand[ok], h[ok]
            while done < size:
                h = _mix(h * _C + x[cand + done])
                done += 1
            nonunique = np.zeros(len(cand), dtype=bool)
            rep = np.zeros(len(cand), dtype=bool)
            cnt_pos = np.zeros(len(cand), dtype=np.int64)
            if len(cand):
                key = h ^ dmix[cand]
                o = np.argsort(key)
                sk = key[o]
                newgrp = np.ones(len(o), dtype=bool)
                newgrp[1:] = sk[1:] != sk[:-1]
                gid = np.cumsum(newgrp) - 1
                gstart = np.flatnonzero(newgrp)
                gcount = np.diff(np.append(gstart, len(o)))
                gmin = np.minimum.reduceat(cand[o], gstart)
                cnt_pos[o] = gcount[gid]
                nonunique = cnt_pos >= 2
                rep[o] = cand[o] != gmin[gid]           # every occurrence after the first
            if size in p.top_ngram_char_frac:
                val = np.zeros(n)
                ci = cand[nonunique]
                if len(ci):
                    c = cnt_pos[nonunique]
                    chars = cs[ci + size] - cs[ci]
                    rows = wpar[ci]
                    o = np.lexsort((chars, c, rows))
                    last = np.ones(len(o), dtype=bool)
                    last[:-1] = rows[o][1:] != rows[o][:-1]
                    sel = o[last]
                    val[rows[sel]] = c[sel] * chars[sel]
                f = _ratio(val, total).astype(np.float32)
                sig[f"top_{size}gram_char_frac"] = f
            if size in p.dup_ngram_char_frac:
                val = np.zeros(n)
                starts = cand[rep]
                if len(starts):
                    delta = np.bincount(starts, minlength=W + 1)[:W + 1] - \
                        np.bincount(starts + size, minlength=W + 1)[:W + 1]
                    cov = np.cumsum(delta[:W]) > 0
                    val = _seg_sum(wpar[cov], wlen[cov], n)
                f = _ratio(val, total).astype(np.float32)
                sig[f"dup_{size}gram_char_frac"] = f
            cand, h = cand[nonunique], h[nonunique]

    # gopher quality ---------------------------------------------------------------
    def _gopher_quality(self, text, words, wpar, wlen, n, sig):
        p = self.params
        symbol = _np(pc.match_substring_regex(words, SYMBOL_WORD_RE)).astype(bool) if len(words) else \
            np.zeros(0, bool)
        real = ~symbol
        nwords_all = np.bincount(wpar, minlength=n)[:n].astype(np.float64)
        nwords = _seg_sum(wpar, real, n)
        mean_len = _ratio(_seg_sum(wpar, wlen * real, n), nwords)
        hashes = _np(pc.count_substring(text, "#")).astype(np.float64)
        ell = _np(pc.count_substring(text, "...")).astype(np.float64) + \
            _np(pc.count_substring(text, "\u2026")).astype(np.float64)
        sym_ratio = np.maximum(_ratio(hashes, nwords), _ratio(ell, nwords))
        lines, lpar = _split(text, "plain", "\n")
        lines = pc.utf8_trim_whitespace(lines)
        ok = _np(pc.utf8_length(lines)) > 0
        lines, lpar = lines.filter(pa.array(ok)), lpar[ok]
        nlines = _seg_sum(lpar, None, n)
        bullet = _np(pc.match_substring_regex(lines, BULLET_RE)).astype(bool) if len(lines) else np.zeros(0, bool)
        ellend = _np(pc.match_substring_regex(lines, ELLIPSIS_END_RE)).astype(bool) if len(lines) else \
            np.zeros(0, bool)
        bullet_frac = _ratio(_seg_sum(lpar, bullet, n), nlines)
        ell_frac = _ratio(_seg_sum(lpar, ellend, n), nlines)
        alpha = _np(pc.match_substring_regex(words, r"\pL")).astype(bool) if len(words) else np.zeros(0, bool)
        alpha_frac = _ratio(_seg_sum(wpar, alpha, n), nwords_all)
        stop = _np(pc.is_in(pc.utf8_lower(words), value_set=pa.array(p.stop_words, pa.string()))).astype(bool) \
            if len(words) else np.zeros(0, bool)
        stops = np.bincount(wpar[stop], minlength=n)[:n]
        sig["word_count"] = nwords.astype(np.int32)
        sig["mean_word_length"] = mean_len.astype(np.float32)
        sig["symbol_word_ratio"] = sym_ratio.astype(np.float32)
        sig["bullet_line_frac"] = bullet_frac.astype(np.float32)
        sig["ellipsis_line_frac"] = ell_frac.astype(np.float32)
        sig["alpha_word_frac"] = alpha_frac.astype(np.float32)
        sig["stop_word_count"] = stops.astype(np.int32)

    # c4 ------------------------------------------------------------------------------
    def _c4(self, text, n, sig, spaced, scope):
        p = self.params
        lines, lpar = _split(text, "plain", "\n")
        lines = pc.utf8_trim_whitespace(lines)
        L = len(lines)
        nonblank = _np(pc.utf8_length(lines)) > 0
        lw, lwpar = _split(lines, "ws")
        lwlen = _np(pc.utf8_length(lw)).astype(np.int64)
        real = lwlen > 0
        nw = np.bincount(lwpar[real], minlength=L)[:L]
        ok = np.ones(L, dtype=bool)
        if p.c4_max_word_length >= 0:
            ok &= np.bincount(lwpar, weights=lwlen > p.c4_max_word_length, minlength=L)[:L] == 0
        if p.c4_remove_citations and L:
            lines = pc.utf8_trim_whitespace(pc.replace_substring_regex(lines, CITATION_RE, ""))
        if p.c4_filter_no_terminal_punct and L:
            ok &= _np(pc.match_substring_regex(lines, C4_END_RE)).astype(bool)
            ok &= ~_np(pc.ends_with(lines, "...")).astype(bool)
        line_spaced = spaced[lpar] if L else np.zeros(0, bool)
        ok &= (nw >= p.c4_min_words_per_line) | ~line_spaced
        ok &= nonblank
        lower = pc.utf8_lower(lines)
        lorem_doc = np.zeros(n, dtype=bool)
        curly_doc = np.zeros(n, dtype=bool)
        if L and p.c4_filter_lorem_ipsum:
            lorem = _np(pc.match_substring(lower, "lorem ipsum")).astype(bool)
            lorem_doc = _seg_sum(lpar, ok & lorem, n) > 0
        if L and p.c4_filter_javascript:
            ok &= ~_np(pc.match_substring(lower, "javascript")).astype(bool)
        if L and p.c4_filter_curly_bracket:
            curly = _np(pc.match_substring(lines, "{")).astype(bool)
            curly_doc = _seg_sum(lpar, ok & curly, n) > 0
        if L and p.c4_filter_policy:
            ok &= ~_np(pc.match_substring_regex(lower, "|".join(POLICY))).astype(bool)
        kept_counts = np.bincount(lpar[ok], minlength=n)[:n] if L else np.zeros(n, np.int64)
        offsets = np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int32)
        kept_lines = lines.filter(pa.array(ok)) if L else pa.array([], pa.string())
        cleaned = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), kept_lines), "\n")
        if not scope.all():
            cleaned = pc.if_else(pa.array(scope), cleaned, text)
        ends = _np(pc.count_substring_regex(cleaned, SENTENCE_END_RE)).astype(np.int64)
        trailing = _np(pc.utf8_length(cleaned)) > 0
        trailing &= ~_np(pc.match_substring_regex(cleaned, FINEWEB_END_RE)).astype(bool)
        sentences = ends + trailing
        sig["c4_lines_removed"] = (_seg_sum(lpar, nonblank, n) - kept_counts).astype(np.int32)
        sig["c4_sentences"] = sentences.astype(np.int32)
        sig["c4_lorem_ipsum"] = lorem_doc
        sig["c4_curly_bracket"] = curly_doc
        return cleaned if p.c4_remove_lines else text

    # fineweb -------------------------------------------------------------------------
    def _fineweb(self, text, n, sig):
        p = self.params
        lines, lpar = _split(text, "plain", "\n")
        lines = pc.utf8_rtrim_whitespace(lines)
        llen = _np(pc.utf8_length(lines)).astype(np.int64)
        ok = _np(pc.utf8_length(pc.utf8_ltrim_whitespace(lines))) > 0
        lines, lpar, llen = lines.filter(pa.array(ok)), lpar[ok], llen[ok]
        nlines = _seg_sum(lpar, None, n)
        punct = _np(pc.match_substring_regex(lines, FINEWEB_END_RE)).astype(bool) if len(lines) else \
            np.zeros(0, bool)
        punct_ratio = _ratio(_seg_sum(lpar, punct, n), nlines)
        short_ratio = _ratio(_seg_sum(lpar, llen <= p.fineweb_short_line_length, n), nlines)
        dup = _dups(lines, lpar)
        newlines = _np(pc.count_substring(text, "\n")).astype(np.float64)
        body = _np(pc.utf8_length(text)).astype(np.float64) - newlines
        dup_ratio = _ratio(_seg_sum(lpar, llen * dup, n), body)
        words, wpar = _split(pc.utf8_trim_whitespace(text), "ws")
        wl = _np(pc.utf8_length(words)) > 0
        nwords = np.bincount(wpar[wl], minlength=n)[:n].astype(np.float64)
        nl_ratio = np.where(nwords > 0, _ratio(newlines, nwords), np.where(newlines > 0, np.inf, 0.0))
        sig["fineweb_lines"] = nlines.astype(np.int32)
        sig["fineweb_line_punct_ratio"] = punct_ratio.astype(np.float32)
        sig["fineweb_short_line_ratio"] = short_ratio.astype(np.float32)
        sig["fineweb_dup_line_char_ratio"] = dup_ratio.astype(np.float32)
        sig["fineweb_newline_word_ratio"] = nl_ratio.astype(np.float32)

    # ------------------------------------------------------------------ decide
    def failures(self, batch: pa.RecordBatch) -> list[tuple[str, np.ndarray]]:
        """(reason, failing rows) in the fixed order, from the signal columns of `batch`."""
        p = self.params
        n = batch.num_rows

        def col(name):
            return _np(batch.column(f"quality_{name}")).astype(np.float64)

        lang = self._languages(batch)
        spaced = np.ones(n, dtype=bool) if lang is None else ~np.isin(lang, p.no_space_languages)
        stop_ok = np.ones(n, dtype=bool) if lang is None else np.isin(lang, p.stop_words_languages)
        f: list[tuple[str, np.ndarray]] = []
        if "gopher_repetition" in p.rules:
            f.append(("gopher_dup_line_frac", col("dup_line_frac") > p.dup_line_frac))
            f.append(("gopher_dup_para_frac", col("dup_para_frac") > p.dup_para_frac))
            f.append(("gopher_dup_line_char_frac", col("dup_line_char_frac") > p.dup_line_char_frac))
            f.append(("gopher_dup_para_char_frac", col("dup_para_char_frac") > p.dup_para_char_frac))
            for k in sorted(p.top_ngram_char_frac):
                f.append((f"gopher_top_{k}gram", spaced & (col(f"top_{k}gram_char_frac") > p.top_ngram_char_frac[k])))
            for k in sorted(p.dup_ngram_char_frac):
                f.append((f"gopher_dup_{k}gram", spaced & (col(f"dup_{k}gram_char_frac") > p.dup_ngram_char_frac[k])))
        if "gopher_quality" in p.rules:
            nwords, mean_len = col("word_count"), col("mean_word_length")
            f.append(("gopher_min_words", spaced & (nwords < p.min_words)))
            f.append(("gopher_max_words", spaced & (nwords > p.max_words)))
            f.append(("gopher_mean_word_length", spaced & ((mean_len < p.min_mean_word_length)
                                                           | (mean_len > p.max_mean_word_length))))
            f.append(("gopher_symbol_word_ratio", spaced & (col("symbol_word_ratio") > p.max_symbol_word_ratio)))
            f.append(("gopher_bullet_lines", col("bullet_line_frac") > p.max_bullet_lines_ratio))
            f.append(("gopher_ellipsis_lines", col("ellipsis_line_frac") > p.max_ellipsis_lines_ratio))
            f.append(("gopher_alpha_words", spaced & (col("alpha_word_frac") < p.min_alpha_words_ratio)))
            f.append(("gopher_stop_words", spaced & stop_ok & (col("stop_word_count") < p.min_stop_words)))
        if "c4" in p.rules:
            f.append(("c4_lorem_ipsum", col("c4_lorem_ipsum") > 0))
            f.append(("c4_curly_bracket", col("c4_curly_bracket") > 0))
            f.append(("c4_min_sentences", col("c4_sentences") < p.c4_min_sentences))
        if "fineweb" in p.rules:
            f.append(("fineweb_empty", col("fineweb_lines") == 0))
            f.append(("fineweb_line_punct_ratio", col("fineweb_line_punct_ratio") < p.fineweb_line_punct_ratio))
            f.append(("fineweb_short_line_ratio", col("fineweb_short_line_ratio") > p.fineweb_short_line_ratio))
            f.append(("fineweb_dup_line_char_ratio",
                      col("fineweb_dup_line_char_ratio") > p.fineweb_dup_line_char_ratio))
            f.append(("fineweb_list_ratio", spaced & (col("fineweb_newline_word_ratio") > p.fineweb_new_line_ratio)))
        return f

    def decide(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        n = batch.num_rows
        p = self.params
        lang = self._languages(batch)
        scope = np.ones(n, dtype=bool) if p.languages is None or lang is None else np.isin(lang, p.languages)
        reasons = np.full(n, None, dtype=object)
        keep = np.ones(n, dtype=bool)
        for reason, mask in reversed(self.failures(batch)):
            m = mask & scope
            reasons[m] = reason
            keep &= ~m
        return keep, reasons

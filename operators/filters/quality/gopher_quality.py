"""Gopher quality rules (Rae et al. 2021): word count, word length, symbols, bullets, ellipses, stop words.

Words are whitespace tokens; "non-symbol" words have a character outside Unicode P*/S*. The word
count and mean word length are over non-symbol words, and the '#' and ellipsis ('...', '…') counts
are divided by them; the alphabetic share is over all words. Bullet and ellipsis lines are shares
of the non-blank lines. Stop words (the, be, to, of, and, that, have, with by default) are counted
case-insensitively, and the stop-word rule applies only to `stop_words_languages` (a row whose
language is null or unknown is not checked). The word rules do not apply to languages written
without spaces; the bullet and ellipsis rules apply to every row.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from operators.filters.quality.family import (Bound, Computed, FamilySettings, RowSettings, RuleFamily, Signal,
                                              with_words)
from operators.filters.quality.text_batch import Pieces, TextBatch, as_numpy, matches, ratio, row_sum

STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]
BULLET_RE = "^[\u2022\u25cf\u2023\u25e6\u2219\u25aa\\-*]"
ELLIPSIS_END_RE = "(?:\\.\\.\\.|\u2026)$"
SYMBOL_WORD_RE = r"^[\pP\pS]+$"


class GopherQualitySettings(FamilySettings):
    min_word_count: int = 50
    max_word_count: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_line_frac: float = 0.9
    max_ellipsis_line_frac: float = 0.3
    min_alpha_word_frac: float = 0.8
    min_stop_word_count: int = 2
    stop_words: list[str] = STOP_WORDS
    #: Languages the stop-word rule applies to (without a language column: every row).
    stop_words_languages: list[str] = ["en"]


def stop_words(words: Pieces, rows: RowSettings) -> np.ndarray:
    """Mask of the words that are stop words of their row's list (case-insensitive): the distinct
    words are looked up once in the union of the lists, then a (list, word) table says which count."""
    lists = rows.lists("stop_words")
    distinct, ids = words.vocabulary
    lower = pc.utf8_lower(distinct)
    if len(lists) == 1:
        return as_numpy(pc.is_in(lower, value_set=pa.array(lists[0], pa.string()))).astype(bool)[ids]
    union = sorted(set().union(*lists))
    at = {w: k for k, w in enumerate(union)}
    member = np.zeros((len(lists), len(union) + 1), dtype=bool)   # last column: not in any list
    for i, words_of_list in enumerate(lists):
        member[i, [at[w] for w in words_of_list]] = True
    code = as_numpy(pc.fill_null(pc.index_in(lower, value_set=pa.array(union, pa.string())), len(union)))
    return member[rows.which[words.rows], code.astype(np.int64)[ids]]


class GopherQuality(RuleFamily):
    name = "gopher_quality"
    Settings = GopherQualitySettings
    renamed = {"min_words": "min_word_count", "max_words": "max_word_count",
               "min_mean_word_length": "min_mean_word_length", "max_mean_word_length": "max_mean_word_length",
               "max_symbol_word_ratio": "max_symbol_word_ratio", "max_bullet_lines_ratio": "max_bullet_line_frac",
               "max_ellipsis_lines_ratio": "max_ellipsis_line_frac", "min_alpha_words_ratio": "min_alpha_word_frac",
               "min_stop_words": "min_stop_word_count", "stop_words": "stop_words",
               "stop_words_languages": "stop_words_languages"}
    settings: GopherQualitySettings
    bound_settings = frozenset(GopherQualitySettings.model_fields) - {"stop_words"}
    row_settings = frozenset({"stop_words"})

    def signals(self) -> tuple[Signal, ...]:
        return (Signal("word_count", np.int32), Signal("mean_word_length", np.float32),
                Signal("symbol_word_ratio", np.float32), Signal("bullet_line_frac", np.float32),
                Signal("ellipsis_line_frac", np.float32), Signal("alpha_word_frac", np.float32),
                Signal("stop_word_count", np.int32))

    def bounds(self) -> list[Bound]:
        s = self.settings
        return [Bound("gopher_min_words", "word_count", "<", s.min_word_count, with_words),
                Bound("gopher_max_words", "word_count", ">", s.max_word_count, with_words),
                Bound("gopher_mean_word_length", "mean_word_length", "<", s.min_mean_word_length, with_words),
                Bound("gopher_mean_word_length", "mean_word_length", ">", s.max_mean_word_length, with_words),
                Bound("gopher_symbol_word_ratio", "symbol_word_ratio", ">", s.max_symbol_word_ratio, with_words),
                Bound("gopher_bullet_lines", "bullet_line_frac", ">", s.max_bullet_line_frac),
                Bound("gopher_ellipsis_lines", "ellipsis_line_frac", ">", s.max_ellipsis_line_frac),
                Bound("gopher_alpha_words", "alpha_word_frac", "<", s.min_alpha_word_frac, with_words),
                Bound("gopher_stop_words", "stop_word_count", "<", s.min_stop_word_count, with_words,
                      tuple(s.stop_words_languages))]

    def compute(self, batch: TextBatch, rows: RowSettings | None = None) -> Computed:
        rows = self.row_settings_of(batch, rows)
        n, text, words, lines = batch.n, batch.text, batch.words, batch.nonblank_lines
        real = ~words.matching(SYMBOL_WORD_RE)
        nwords = row_sum(words.rows, real, n)
        hashes = as_numpy(pc.count_substring(text, "#")).astype(np.float64)
        ellipses = as_numpy(pc.count_substring(text, "...")).astype(np.float64) + \
            as_numpy(pc.count_substring(text, "\u2026")).astype(np.float64)
        nlines = row_sum(lines.rows, None, n)
        stop = stop_words(words, rows) if len(words) else np.zeros(0, dtype=bool)
        return Computed({
            "word_count": nwords,
            "mean_word_length": ratio(row_sum(words.rows, words.lengths * real, n), nwords),
            "symbol_word_ratio": np.maximum(ratio(hashes, nwords), ratio(ellipses, nwords)),
            "bullet_line_frac": ratio(row_sum(lines.rows, matches(lines.values, BULLET_RE), n), nlines),
            "ellipsis_line_frac": ratio(row_sum(lines.rows, matches(lines.values, ELLIPSIS_END_RE), n), nlines),
            "alpha_word_frac": ratio(row_sum(words.rows, words.matching(r"\pL"), n),
                                     np.bincount(words.rows, minlength=n)[:n].astype(np.float64)),
            "stop_word_count": np.bincount(words.rows[stop], minlength=n)[:n],
        })

"""FineWeb rules (Penedo et al. 2024): empty pages, unpunctuated lines, short lines, repeated lines, lists.

Run on the text after C4's line cleaning when both run. Over the non-blank lines (right-stripped):
the share ending in terminal punctuation, the share of at most `short_line_length` characters, and
the characters in lines repeating an earlier line over the text's non-newline characters; the list
ratio is newlines per whitespace word (infinite when a text of newlines has no word) and, being
word-based, does not apply to languages written without spaces.
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from operators.filters.quality.family import (Bound, Computed, FamilySettings, RowSettings, RuleFamily, Signal,
                                              with_words)
from operators.filters.quality.punctuation import LINE_END_RE
from operators.filters.quality.text_batch import Pieces, TextBatch, as_numpy, matches, ratio, row_sum


class FineWebSettings(FamilySettings):
    min_line_punct_ratio: float = 0.12
    #: Lines of at most this many characters are short.
    short_line_length: int = 30
    max_short_line_ratio: float = 0.67
    max_dup_line_char_ratio: float = 0.01
    max_newline_word_ratio: float = 0.3


class FineWeb(RuleFamily):
    name = "fineweb"
    Settings = FineWebSettings
    renamed = {"fineweb_line_punct_ratio": "min_line_punct_ratio", "fineweb_short_line_length": "short_line_length",
               "fineweb_short_line_ratio": "max_short_line_ratio",
               "fineweb_dup_line_char_ratio": "max_dup_line_char_ratio",
               "fineweb_new_line_ratio": "max_newline_word_ratio"}
    settings: FineWebSettings
    bound_settings = frozenset(FineWebSettings.model_fields) - {"short_line_length"}
    row_settings = frozenset({"short_line_length"})

    def signals(self) -> tuple[Signal, ...]:
        return (Signal("fineweb_lines", np.int32), Signal("fineweb_line_punct_ratio", np.float32),
                Signal("fineweb_short_line_ratio", np.float32), Signal("fineweb_dup_line_char_ratio", np.float32),
                Signal("fineweb_newline_word_ratio", np.float32))

    def bounds(self) -> list[Bound]:
        s = self.settings
        return [Bound("fineweb_empty", "fineweb_lines", "<", 1),
                Bound("fineweb_line_punct_ratio", "fineweb_line_punct_ratio", "<", s.min_line_punct_ratio),
                Bound("fineweb_short_line_ratio", "fineweb_short_line_ratio", ">", s.max_short_line_ratio),
                Bound("fineweb_dup_line_char_ratio", "fineweb_dup_line_char_ratio", ">", s.max_dup_line_char_ratio),
                Bound("fineweb_list_ratio", "fineweb_newline_word_ratio", ">", s.max_newline_word_ratio, with_words)]

    def compute(self, batch: TextBatch, rows: RowSettings | None = None) -> Computed:
        short = self.row_settings_of(batch, rows).values("short_line_length")
        n, text = batch.n, batch.text
        lines = Pieces.of(pc.utf8_rtrim_whitespace(batch.raw_lines.values), batch.raw_lines.rows)
        lines = lines.where(batch.lines.lengths > 0)
        nlines = row_sum(lines.rows, None, n)
        newlines = as_numpy(pc.count_substring(text, "\n")).astype(np.float64)
        body = batch.nchars.astype(np.float64) - newlines
        nwords = np.bincount(batch.words.rows, minlength=n)[:n].astype(np.float64)
        return Computed({
            "fineweb_lines": nlines,
            "fineweb_line_punct_ratio": ratio(row_sum(lines.rows, matches(lines.values, LINE_END_RE), n), nlines),
            "fineweb_short_line_ratio": ratio(row_sum(lines.rows, lines.lengths <= short[lines.rows], n),
                                              nlines),
            "fineweb_dup_line_char_ratio": ratio(row_sum(lines.rows, lines.lengths * lines.repeats(), n), body),
            "fineweb_newline_word_ratio": np.where(nwords > 0, ratio(newlines, nwords),
                                                   np.where(newlines > 0, np.inf, 0.0)),
        })

"""C4 rules (Raffel et al. 2020): line cleaning, then lorem ipsum, curly brackets and too few sentences.

Per line (stripped, citation marks such as [1] and [edit] removed), in this order: lines with a word
longer than `max_word_length` characters go, lines not ending in terminal punctuation (or ending in
'...') go, lines with fewer than `min_words_per_line` words go (not for languages written without
spaces), blank lines go, a "lorem ipsum" in a line that survived so far drops the document, lines
with "javascript" go, a '{' in a line that survived so far drops the document, lines with cookie or
policy boilerplate go. The sentences of the cleaned text are counted (terminal punctuation followed
by a space or the end; CJK full stops need no space) and fewer than `min_sentences` drops the
document. With `remove_lines`, the kept lines joined by "\\n" replace `text` for the rules after
(FineWeb) and in the output.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from operators.filters.quality.family import Bound, Computed, FamilySettings, RowSettings, RuleFamily, Signal
from operators.filters.quality.punctuation import LINE_END_RE, SENTENCE_END_RE
from operators.filters.quality.text_batch import TextBatch, as_numpy, row_sum

POLICY = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]
#: C4's line-ending punctuation (. ? ! " ') plus the CJK full stops and curly closing quotes.
C4_END_RE = "[.?!\"'\u3002\uff01\uff1f\u201d\u2019]$"
CITATION_RE = r"\[\d*\]|\[edit\]|\[citation needed\]"


class C4Settings(FamilySettings):
    #: Replace `text` by its kept lines (off: signals only).
    remove_lines: bool = True
    filter_no_terminal_punct: bool = True
    min_words_per_line: int = 3
    #: Lines with a longer word go (negative: no limit).
    max_word_length: int = 1000
    remove_citations: bool = True
    filter_javascript: bool = True
    filter_policy: bool = True
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    min_sentences: int = 5


class C4(RuleFamily):
    name = "c4"
    Settings = C4Settings
    renamed = {f"c4_{k}": k for k in ("remove_lines", "filter_no_terminal_punct", "min_words_per_line",
                                      "max_word_length", "remove_citations", "filter_javascript", "filter_policy",
                                      "filter_lorem_ipsum", "filter_curly_bracket", "min_sentences")}
    settings: C4Settings
    bound_settings = frozenset({"min_sentences"})
    row_settings = frozenset({"filter_no_terminal_punct"})

    def signals(self) -> tuple[Signal, ...]:
        return (Signal("c4_lines_removed", np.int32), Signal("c4_sentences", np.int32),
                Signal("c4_lorem_ipsum", np.bool_), Signal("c4_curly_bracket", np.bool_))

    def bounds(self) -> list[Bound]:
        return [Bound("c4_lorem_ipsum", "c4_lorem_ipsum", ">", 0),
                Bound("c4_curly_bracket", "c4_curly_bracket", ">", 0),
                Bound("c4_min_sentences", "c4_sentences", "<", self.settings.min_sentences)]

    def compute(self, batch: TextBatch, rows: RowSettings | None = None) -> Computed:
        punct_rows = self.row_settings_of(batch, rows).values("filter_no_terminal_punct").astype(bool)
        s, n, text = self.settings, batch.n, batch.text
        lines, lpar = batch.lines.values, batch.lines.rows
        L = len(lpar)
        nonblank = batch.lines.lengths > 0
        line_words = batch.line_words()
        nw = np.bincount(line_words.rows[line_words.lengths > 0], minlength=L)[:L]
        ok = np.ones(L, dtype=bool)
        if s.max_word_length >= 0:
            ok &= np.bincount(line_words.rows, weights=line_words.lengths > s.max_word_length, minlength=L)[:L] == 0
        if s.remove_citations and L:
            lines = pc.utf8_trim_whitespace(pc.replace_substring_regex(lines, CITATION_RE, ""))
        if punct_rows.any() and L:
            ended = as_numpy(pc.match_substring_regex(lines, C4_END_RE)).astype(bool)
            ended &= ~as_numpy(pc.ends_with(lines, "...")).astype(bool)
            ok &= ended | ~punct_rows[lpar]
        line_has_words = batch.has_words[lpar] if L else np.zeros(0, bool)
        ok &= (nw >= s.min_words_per_line) | ~line_has_words
        ok &= nonblank
        lower = pc.utf8_lower(lines)
        lorem_doc = np.zeros(n, dtype=bool)
        curly_doc = np.zeros(n, dtype=bool)
        if L and s.filter_lorem_ipsum:
            lorem = as_numpy(pc.match_substring(lower, "lorem ipsum")).astype(bool)
            lorem_doc = row_sum(lpar, ok & lorem, n) > 0
        if L and s.filter_javascript:
            ok &= ~as_numpy(pc.match_substring(lower, "javascript")).astype(bool)
        if L and s.filter_curly_bracket:
            curly = as_numpy(pc.match_substring(lines, "{")).astype(bool)
            curly_doc = row_sum(lpar, ok & curly, n) > 0
        if L and s.filter_policy:
            ok &= ~as_numpy(pc.match_substring_regex(lower, "|".join(POLICY))).astype(bool)
        kept_counts = np.bincount(lpar[ok], minlength=n)[:n] if L else np.zeros(n, np.int64)
        offsets = np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int32)
        kept_lines = lines.filter(pa.array(ok)) if L else pa.array([], pa.string())
        cleaned = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), kept_lines), "\n")
        if not batch.scope.all():
            cleaned = pc.if_else(pa.array(batch.scope), cleaned, text)
        ends = as_numpy(pc.count_substring_regex(cleaned, SENTENCE_END_RE)).astype(np.int64)
        trailing = as_numpy(pc.utf8_length(cleaned)) > 0
        trailing &= ~as_numpy(pc.match_substring_regex(cleaned, LINE_END_RE)).astype(bool)
        signals = {"c4_lines_removed": row_sum(lpar, nonblank, n) - kept_counts,
                   "c4_sentences": ends + trailing,
                   "c4_lorem_ipsum": lorem_doc,
                   "c4_curly_bracket": curly_doc}
        return Computed(signals, cleaned if s.remove_lines else None)

"""A batch of texts as the rule families see it: split into words and lines once, for all of them.

Every split is one Arrow kernel over the whole batch, flattened into `Pieces` that remember the row
each piece came from, so per-row figures are `np.bincount` sums over those rows (`row_sum`). A
family asks for `words` or `lines`; the first ask splits, later families reuse the result. The
languages of the rows (when the batch has a `language` column) decide how their words are found
(whitespace, or ICU's word breaker for `segmented_languages`, see `segmentation`), which rows the
word-based rules apply to (`has_words`: every row but those of a language written without spaces
that is not segmented) and which rows the operator looks at (`scope`).
"""
from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.documents import TEXT
from operators.columns import LANGUAGE


def as_numpy(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return a.to_numpy(zero_copy_only=False)


def row_sum(rows: np.ndarray, weights, n: int) -> np.ndarray:
    """Per-row sums of `weights` (None: counts) over pieces that belong to `rows`."""
    return np.bincount(rows, weights=weights, minlength=n)[:n]


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def matches(values: pa.Array, regex: str) -> np.ndarray:
    """Bool mask of the values that contain a match of `regex`."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return as_numpy(pc.match_substring_regex(values, regex)).astype(bool)


@dataclasses.dataclass(frozen=True)
class Pieces:
    """The pieces (words, lines, paragraphs) of every row of a batch, flattened."""

    values: pa.Array
    rows: np.ndarray        # int64: the row each piece belongs to
    lengths: np.ndarray     # int64: characters per piece

    @classmethod
    def of(cls, values: pa.Array, rows: np.ndarray) -> Pieces:
        return cls(values, rows, as_numpy(pc.utf8_length(values)).astype(np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def vocabulary(self) -> tuple[pa.Array, np.ndarray]:
        """(the distinct values, each piece's index among them): a test of the values runs once per
        distinct value (words repeat: about a fifth of a batch's words are distinct)."""
        enc = pc.dictionary_encode(self.values)
        return enc.dictionary, as_numpy(enc.indices).astype(np.int64)

    def matching(self, regex: str) -> np.ndarray:
        """Bool mask of the pieces that contain a match of `regex`."""
        if len(self) == 0:
            return np.zeros(0, dtype=bool)
        distinct, ids = self.vocabulary
        return matches(distinct, regex)[ids]

    def where(self, mask: np.ndarray) -> Pieces:
        if mask.all():
            return self
        return Pieces(self.values.filter(pa.array(mask)), self.rows[mask], self.lengths[mask])

    def nonempty(self) -> Pieces:
        return self.where(self.lengths > 0)

    def repeats(self) -> np.ndarray:
        """Mask of the pieces equal to an earlier piece of the same row."""
        if len(self) == 0:
            return np.zeros(0, dtype=bool)
        enc = pc.dictionary_encode(self.values)
        ids = as_numpy(enc.indices).astype(np.int64)
        key = self.rows * np.int64(len(enc.dictionary) + 1) + ids
        _, first = np.unique(key, return_index=True)
        dup = np.ones(len(key), dtype=bool)
        dup[first] = False
        return dup


def split(values: pa.Array, how: str, pattern: str = "") -> Pieces:
    """Split every value: on whitespace runs (`ws`), on a literal (`plain`) or on a regex (`regex`)."""
    if how == "ws":
        lists = pc.utf8_split_whitespace(values)
    elif how == "regex":
        lists = pc.split_pattern_regex(values, pattern)
    else:
        lists = pc.split_pattern(values, pattern)
    rows = as_numpy(pc.list_parent_indices(lists)).astype(np.int64)
    return Pieces.of(pc.list_flatten(lists), rows)


class TextBatch:
    """The `text` of a record batch (nulls read as ""), its languages and its shared splits."""

    def __init__(self, batch: pa.RecordBatch, no_space_languages: list[str],
                 languages: list[str] | None = None, text: pa.Array | None = None,
                 segmented_languages: list[str] = ()) -> None:
        self.n = batch.num_rows
        self.record_batch = batch
        self.no_space_languages = no_space_languages
        self.languages = languages
        self.segmented_languages = list(segmented_languages)
        if text is not None:
            self.text = text

    def with_text(self, text: pa.Array) -> TextBatch:
        """The same rows with a new text (C4's cleaned lines): splits are redone on demand."""
        return TextBatch(self.record_batch, self.no_space_languages, self.languages, text,
                         self.segmented_languages)

    def take(self, rows: np.ndarray) -> TextBatch:
        """The given rows only (their text and language; no other column is copied)."""
        idx = pa.array(rows, pa.int64())
        cols = {TEXT: self.text.take(idx)}
        if self.language is not None:
            cols[LANGUAGE] = self.language.take(idx)
        return TextBatch(pa.RecordBatch.from_pydict(cols), self.no_space_languages, self.languages,
                         segmented_languages=self.segmented_languages)

    @cached_property
    def text(self) -> pa.Array:
        text = pc.fill_null(self.record_batch.column(TEXT), "")
        if text.type != pa.string():
            text = text.cast(pa.string())
        return text

    @cached_property
    def language(self) -> pa.Array | None:
        """The rows' languages ("" for null), or None when the batch has no language column."""
        if LANGUAGE not in self.record_batch.schema.names:
            return None
        lang = self.record_batch.column(LANGUAGE)
        if lang.type != pa.string():
            lang = lang.cast(pa.string())
        return pc.fill_null(lang, "")

    def language_in(self, values: list[str], default: bool) -> np.ndarray:
        """Rows whose language is one of `values`; `default` for every row without a language column."""
        if self.language is None:
            return np.full(self.n, default, dtype=bool)
        return as_numpy(pc.is_in(self.language, value_set=pa.array(values, pa.string()))).astype(bool)

    @cached_property
    def segmented(self) -> np.ndarray:
        """Rows whose words come from ICU's word breaker (their language is written without spaces)."""
        if not self.segmented_languages:
            return np.zeros(self.n, dtype=bool)
        return self.language_in(self.segmented_languages, default=False)

    @cached_property
    def has_words(self) -> np.ndarray:
        """Rows whose words are known (written with spaces, or segmented): the word-based rules apply."""
        return ~self.language_in(self.no_space_languages, default=False) | self.segmented

    @cached_property
    def scope(self) -> np.ndarray:
        """Rows the operator judges (all, unless the job limits it to some languages)."""
        if self.languages is None:
            return np.ones(self.n, dtype=bool)
        return self.language_in(self.languages, default=True)

    @cached_property
    def nchars(self) -> np.ndarray:
        return as_numpy(pc.utf8_length(self.text)).astype(np.int64)

    @cached_property
    def words(self) -> Pieces:
        """The words of every row: whitespace-separated, or ICU's for segmented rows. They are the
        words of its lines in order ("\n" is whitespace), so the lines' split serves both."""
        lw = self.line_words()
        return Pieces(lw.values, self.raw_lines.rows[lw.rows], lw.lengths).nonempty()

    @cached_property
    def segmented_rows(self) -> np.ndarray:
        return np.flatnonzero(self.segmented)

    @cached_property
    def segmented_split(self) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """ICU words of the segmented rows: (words, row in this batch, line within the row)."""
        from operators.filters.quality.segmentation import segment

        rows = self.segmented_rows
        idx = pa.array(rows, pa.int64())
        words, doc, line = segment(self.text.take(idx).to_pylist(), self.language.take(idx).to_pylist())
        return words, rows[doc], line

    @cached_property
    def segmented_words(self) -> Pieces:
        words, rows, _ = self.segmented_split
        return Pieces.of(words, rows)

    def line_words(self) -> Pieces:
        """The words of every line of `raw_lines` (`rows` index those lines): whitespace-separated, or
        ICU's for the lines of segmented rows (a blank line of a spaced row has one empty word)."""
        return self._line_words

    @cached_property
    def _line_words(self) -> Pieces:
        spaced = split(self.lines.values, "ws")
        if not self.segmented.any():
            return spaced
        words, rows, line = self.segmented_split
        first_line = np.concatenate([[0], np.cumsum(np.bincount(self.raw_lines.rows, minlength=self.n))[:-1]])
        seg_lines = first_line[rows] + line
        other = spaced.where(~self.segmented[self.raw_lines.rows[spaced.rows]])
        at = np.concatenate([other.rows, seg_lines])
        order = np.argsort(at, kind="stable")
        return Pieces(pa.concat_arrays([other.values, words]).take(pa.array(order)), at[order],
                      np.concatenate([other.lengths, as_numpy(pc.utf8_length(words)).astype(np.int64)])[order])

    @cached_property
    def raw_lines(self) -> Pieces:
        """Every "\\n"-separated line as written (blank ones too)."""
        return split(self.text, "plain", "\n")

    @cached_property
    def lines(self) -> Pieces:
        """Every line, stripped; aligned with `raw_lines`."""
        return Pieces.of(pc.utf8_trim_whitespace(self.raw_lines.values), self.raw_lines.rows)

    @cached_property
    def nonblank_lines(self) -> Pieces:
        """The lines with something besides whitespace, stripped."""
        return self.lines.nonempty()

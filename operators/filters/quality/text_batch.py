"""A batch of texts as the rule families see it: split into words and lines once, for all of them.

Every split is one Arrow kernel over the whole batch, flattened into `Pieces` that remember the row
each piece came from, so per-row figures are `np.bincount` sums over those rows (`row_sum`). A
family asks for `words` or `lines`; the first ask splits, later families reuse the result. The
languages of the rows (when the batch has a `language` column) decide which rows the word-based
rules apply to (`spaced`) and which rows the operator looks at (`scope`).
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
                 languages: list[str] | None = None, text: pa.Array | None = None) -> None:
        self.n = batch.num_rows
        self.record_batch = batch
        self.no_space_languages = no_space_languages
        self.languages = languages
        if text is not None:
            self.text = text

    def with_text(self, text: pa.Array) -> TextBatch:
        """The same rows with a new text (C4's cleaned lines): splits are redone on demand."""
        return TextBatch(self.record_batch, self.no_space_languages, self.languages, text)

    def take(self, rows: np.ndarray) -> TextBatch:
        """The given rows only (their text and language; no other column is copied)."""
        idx = pa.array(rows, pa.int64())
        cols = {TEXT: self.text.take(idx)}
        if self.language is not None:
            cols[LANGUAGE] = self.language.take(idx)
        return TextBatch(pa.RecordBatch.from_pydict(cols), self.no_space_languages, self.languages)

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
    def spaced(self) -> np.ndarray:
        """Rows written with spaces between words: the word-based rules apply to them."""
        return ~self.language_in(self.no_space_languages, default=False)

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
        """Whitespace-separated words."""
        return split(pc.utf8_trim_whitespace(self.text), "ws").nonempty()

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

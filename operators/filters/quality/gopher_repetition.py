"""Gopher repetition rules (Rae et al. 2021, table A1): pages that repeat lines, paragraphs or n-grams.

Lines are the non-blank lines (compared stripped); paragraphs are separated by blank lines; the char
fractions are over the document's characters. N-gram fractions count word characters (no spaces)
over the document's word characters, as RedPajama-V2 does: the top n-gram counts only when it occurs
at least twice, and the duplicated n-gram fraction covers the words of every repeat occurrence (not
the first) of a repeated n-gram, overlaps counted once. The n-gram rules are word-based: they do
not apply to languages written without spaces.

N-grams are compared by 64-bit hashes of the word ids (a collision is about 2^-64 per pair) over
the concatenated words of the batch, with sort-based grouping; each n-gram size only looks at the
positions whose shorter n-gram already repeated, so text without repetition costs little.
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from pydantic import field_validator

from operators.filters.quality.family import (Bound, Computed, FamilySettings, RowSettings, RuleFamily, Signal,
                                              with_words)
from operators.filters.quality.text_batch import Pieces, TextBatch, as_numpy, ratio, row_sum, split


class GopherRepetitionSettings(FamilySettings):
    max_dup_line_frac: float = 0.3
    max_dup_para_frac: float = 0.3
    max_dup_line_char_frac: float = 0.2
    max_dup_para_char_frac: float = 0.2
    #: n -> largest share of word characters in the most frequent n-gram.
    max_top_ngram_char_frac: dict[int, float] = {2: 0.20, 3: 0.18, 4: 0.16}
    #: n -> largest share of word characters in repeated n-grams.
    max_dup_ngram_char_frac: dict[int, float] = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}

    @field_validator("max_top_ngram_char_frac", "max_dup_ngram_char_frac")
    @classmethod
    def _ngram_sizes(cls, v):
        for n in v:
            if not 1 <= n <= 50:
                raise ValueError(f"n-gram size {n} out of range 1..50")
        return v


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


class GopherRepetition(RuleFamily):
    name = "gopher_repetition"
    Settings = GopherRepetitionSettings
    renamed = {"dup_line_frac": "max_dup_line_frac", "dup_para_frac": "max_dup_para_frac",
               "dup_line_char_frac": "max_dup_line_char_frac", "dup_para_char_frac": "max_dup_para_char_frac",
               "top_ngram_char_frac": "max_top_ngram_char_frac", "dup_ngram_char_frac": "max_dup_ngram_char_frac"}
    settings: GopherRepetitionSettings
    bound_settings = frozenset(GopherRepetitionSettings.model_fields)

    def compute_key(self) -> str:
        """Only the n-gram sizes decide what `compute` does; the limits are the bounds'."""
        s = self.settings
        return repr((sorted(s.max_top_ngram_char_frac), sorted(s.max_dup_ngram_char_frac)))

    def _sizes(self) -> list[int]:
        s = self.settings
        return sorted(set(s.max_top_ngram_char_frac) | set(s.max_dup_ngram_char_frac))

    def signals(self) -> tuple[Signal, ...]:
        s = self.settings
        out = [Signal(f"dup_{unit}_{what}", np.float32) for unit in ("line", "para") for what in ("frac", "char_frac")]
        for n in self._sizes():
            if n in s.max_top_ngram_char_frac:
                out.append(Signal(f"top_{n}gram_char_frac", np.float32))
            if n in s.max_dup_ngram_char_frac:
                out.append(Signal(f"dup_{n}gram_char_frac", np.float32))
        return tuple(out)

    def bounds(self) -> list[Bound]:
        s = self.settings
        out = [Bound("gopher_dup_line_frac", "dup_line_frac", ">", s.max_dup_line_frac),
               Bound("gopher_dup_para_frac", "dup_para_frac", ">", s.max_dup_para_frac),
               Bound("gopher_dup_line_char_frac", "dup_line_char_frac", ">", s.max_dup_line_char_frac),
               Bound("gopher_dup_para_char_frac", "dup_para_char_frac", ">", s.max_dup_para_char_frac)]
        out += [Bound(f"gopher_top_{n}gram", f"top_{n}gram_char_frac", ">", limit, with_words)
                for n, limit in sorted(s.max_top_ngram_char_frac.items())]
        out += [Bound(f"gopher_dup_{n}gram", f"dup_{n}gram_char_frac", ">", limit, with_words)
                for n, limit in sorted(s.max_dup_ngram_char_frac.items())]
        return out

    def compute(self, batch: TextBatch, rows: RowSettings | None = None) -> Computed:
        sig: dict[str, np.ndarray] = {}
        paragraphs = split(batch.text, "regex", r"\n\s*\n")
        paragraphs = Pieces.of(pc.utf8_trim_whitespace(paragraphs.values), paragraphs.rows).nonempty()
        for unit, pieces in (("line", batch.nonblank_lines), ("para", paragraphs)):
            dup = pieces.repeats()
            sig[f"dup_{unit}_frac"] = ratio(row_sum(pieces.rows, dup, batch.n), row_sum(pieces.rows, None, batch.n))
            sig[f"dup_{unit}_char_frac"] = ratio(row_sum(pieces.rows, pieces.lengths * dup, batch.n), batch.nchars)
        sig.update(self._ngrams(batch.words, batch.n))
        return Computed(sig)

    def _ngrams(self, words: Pieces, n: int) -> dict[str, np.ndarray]:
        s = self.settings
        sig: dict[str, np.ndarray] = {}
        wpar, wlen = words.rows, words.lengths
        W = len(words)
        total = row_sum(wpar, wlen, n)
        cs = np.concatenate([[0], np.cumsum(wlen)])
        ends = np.cumsum(np.bincount(wpar, minlength=n)[:n])   # end offset of each row's words
        row_end = ends[wpar] if W else np.zeros(0, np.int64)
        x = _mix(words.vocabulary[1].astype(np.uint64) + np.uint64(1)) if W else \
            np.zeros(0, np.uint64)
        dmix = _mix(wpar.astype(np.uint64) * _C + np.uint64(7))
        # Candidates: an n-gram can only repeat where its (n-1)-gram prefix repeats, so each size
        # hashes and sorts only the positions whose previous-size n-gram occurred twice or more.
        cand = np.arange(W, dtype=np.int64)
        h = x.copy()                                    # h[j]: hash of words cand[j]..cand[j]+done-1
        done = 1
        for size in self._sizes():
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
            if size in s.max_top_ngram_char_frac:
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
                sig[f"top_{size}gram_char_frac"] = ratio(val, total)
            if size in s.max_dup_ngram_char_frac:
                val = np.zeros(n)
                starts = cand[rep]
                if len(starts):
                    delta = np.bincount(starts, minlength=W + 1)[:W + 1] - \
                        np.bincount(starts + size, minlength=W + 1)[:W + 1]
                    cov = np.cumsum(delta[:W]) > 0
                    val = row_sum(wpar[cov], wlen[cov], n)
                sig[f"dup_{size}gram_char_frac"] = ratio(val, total)
            cand, h = cand[nonunique], h[nonunique]
        return sig

"""importance: DSIR-style log importance weight of each document -> `<name>_importance`.

A model is two bag-of-n-gram distributions over a fixed number of hash buckets, one fitted on a
target corpus (curated prose: the text one wants more of) and one on a source corpus (the raw
crawl). A document's weight is the log-likelihood ratio of its features under the two:

    features(x) = bucket of every word unigram and every word bigram of x
                  (words as MinHash dedup normalises them: lowercase, punctuation removed,
                  ASCII digits -> 0; bucket = 64-bit hash mod B)
    weight(x)   = sum over features f of x of  log p_target[f] - log p_source[f]

as DSIR (Xie et al. 2023) and RedPajama-V2's `*_importance` signals compute it. With
`length_correction`, the log ratio of the document's word count under two Poisson length
distributions (means taken on target and source) is added, as RedPajama-V2's
`*_importance_length_correction` does: k * (log l_t - log l_s) - (l_t - l_s) for k words.

The weight is a sum, so it grows in magnitude with length; `per_word` divides it by the word count,
which makes one threshold fit short and long documents alike. Hashing, bucketing and the sums run
over the whole batch at once in numpy (no Python object per word). Models are `.npz` files (see
`ImportanceModel`); `decant importance train` writes them; `model: curated` names the bundled one in
models/signals/.

Drop reason (only with `threshold`): "<name>_below_threshold".
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from engine.operator import Resources, register
from operators.dedup.minhash import fmix64, word_hashes
from operators.signals import SignalOperator, SignalParams

DEFAULT_MODEL = "curated"
MODEL_SUFFIX = ".npz"
FORMAT = "decant-hashed-ngrams-1"
#: Odd 64-bit multiplier that combines two word hashes into a bigram hash (then fmix64).
BIGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)


def ngram_features(texts: Sequence[str], buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket ids of every unigram and bigram of every text, vectorised over the batch.

    Returns (buckets int64 [F], doc int64 [F]: the text each feature belongs to, words int64 [D]).
    A word's hash is XXH3-64 of its normalised form (as MinHash dedup computes it); a bigram's is
    fmix64(h1 * BIGRAM_BASE + h2) over uint64; bucket = hash mod `buckets`.
    """
    wh, offsets = word_hashes(texts)
    nwords = np.diff(offsets)
    ndocs = len(nwords)
    uni_doc = np.repeat(np.arange(ndocs, dtype=np.int64), nwords)
    # a bigram starts at every word but the last of its document
    starts = np.ones(len(wh), dtype=bool)
    last = offsets[1:][nwords > 0] - 1
    starts[last] = False
    first = np.flatnonzero(starts)
    with np.errstate(over="ignore"):
        bi = fmix64(wh[first] * BIGRAM_BASE + wh[first + 1])
    b = np.uint64(buckets)
    feats = np.concatenate([wh % b, bi % b]).astype(np.int64)
    docs = np.concatenate([uni_doc, uni_doc[first]])
    return feats, docs, nwords.astype(np.int64)


class ImportanceModel:
    """Two smoothed log-probability tables over hash buckets, and the mean document lengths.

    File (.npz): `log_p_target`, `log_p_source` (float32 [buckets]), `mean_words_target`,
    `mean_words_source` (float64 scalars), `meta` (a JSON string: format, language, training).
    """

    def __init__(self, log_p_target: np.ndarray, log_p_source: np.ndarray, mean_words_target: float,
                 mean_words_source: float, meta: dict[str, Any] | None = None) -> None:
        if log_p_target.shape != log_p_source.shape or log_p_target.ndim != 1:
            raise ValueError("target and source tables must be 1-d and of the same size")
        self.log_p_target = np.asarray(log_p_target, dtype=np.float32)
        self.log_p_source = np.asarray(log_p_source, dtype=np.float32)
        self.mean_words_target = float(mean_words_target)
        self.mean_words_source = float(mean_words_source)
        self.meta = dict(meta or {})
        self.log_ratio = self.log_p_target.astype(np.float64) - self.log_p_source.astype(np.float64)

    @property
    def buckets(self) -> int:
        return len(self.log_p_target)

    @property
    def language(self) -> str | None:
        return self.meta.get("language")

    def save(self, path: str | os.PathLike) -> None:
        meta = {"format": FORMAT, **self.meta}
        with open(path, "wb") as f:
            np.savez_compressed(f, log_p_target=self.log_p_target, log_p_source=self.log_p_source,
                                mean_words_target=np.float64(self.mean_words_target),
                                mean_words_source=np.float64(self.mean_words_source),
                                meta=np.array(json.dumps(meta, sort_keys=True)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImportanceModel:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not a decant importance model (format {meta.get('format')!r})")
            return cls(z["log_p_target"], z["log_p_source"], float(z["mean_words_target"]),
                       float(z["mean_words_source"]), meta)

    def weights(self, texts: Sequence[str], length_correction: bool = False, per_word: bool = False) -> np.ndarray:
        """log p_target(x) - log p_source(x) for every text (float64); `per_word` divides by the
        word count (0 for a text without words)."""
        feats, docs, nwords = ngram_features(texts, self.buckets)
        out = np.bincount(docs, weights=self.log_ratio[feats], minlength=len(nwords))
        if length_correction:
            lt, ls = self.mean_words_target, self.mean_words_source
            out += nwords * (np.log(lt) - np.log(ls)) - (lt - ls)
        if per_word:
            out = np.divide(out, nwords, out=np.zeros_like(out), where=nwords > 0)
        return out


class ImportanceParams(SignalParams):
    #: A bundled model name (models/signals/<name>.npz) or a path to an .npz of `decant importance train`.
    model: str = DEFAULT_MODEL
    #: Add the Poisson document-length log ratio (RedPajama-V2's length-corrected variant).
    length_correction: bool = False
    #: Divide the weight by the document's word count: comparable across lengths, so one
    #: threshold suits short and long documents (the sum is DSIR's and RedPajama-V2's).
    per_word: bool = False
    batch_rows: int = Field(4096, ge=1, description="documents hashed at once (bounds memory)")


@register
class Importance(SignalOperator):
    """Hashed uni/bigram log importance weight (target vs source) -> `<name>_importance` (float32)."""

    name = "importance"
    signal = "importance"
    model_suffixes = (MODEL_SUFFIX,)
    resources = Resources(cpus=1.0, memory_mb=256)
    Params = ImportanceParams

    def load(self) -> ImportanceModel:
        return ImportanceModel.load(self.model_path)

    def model_language(self) -> str | None:
        return self.model.language

    def score(self, texts: pa.Array) -> np.ndarray:
        p = self.params
        values = pc.fill_null(texts, "").to_pylist()
        out = np.zeros(len(values), dtype=np.float64)
        for lo in range(0, len(values), p.batch_rows):
            out[lo:lo + p.batch_rows] = self.model.weights(values[lo:lo + p.batch_rows], p.length_correction,
                                                           p.per_word)
        return out

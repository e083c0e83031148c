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

from engine.operator import Resources, register
from operators.langid import LABEL_PREFIX, load_model, normalize
from operators.signals import SignalOperator, SignalParams

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


class ClassifierParams(SignalParams):
    #: A bundled model name (models/signals/<name>.ftz) or a path to a fastText supervised model.
    model: str = DEFAULT_MODEL
    #: The label whose probability is the score (without "__label__"); default: the one recorded
    #: beside the model by `decant classifier train` ("positive").
    label: str | None = None

    @field_validator("threshold")
    @classmethod
    def _probability(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError("threshold is a probability in [0, 1]")
        return v


@register
class Classifier(SignalOperator):
    """fastText probability of a label -> `<name>_score` (float32); optional drop below a threshold."""

    name = "classifier"
    signal = "score"
    model_suffixes = MODEL_SUFFIXES
    resources = Resources(cpus=1.0, memory_mb=512)
    Params = ClassifierParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        meta = read_metadata(self.model_path)
        self.label = self.params.label or meta.get("label") or POSITIVE
        known = meta.get("labels")
        if known and self.label not in known:
            raise ValueError(f"label {self.label!r} is not one of the model's labels {known}")
        self.language = meta.get("language")

    def load(self):
        model = load_model(str(self.model_path))
        labels = [lab.removeprefix(LABEL_PREFIX) for lab in model.get_labels()]
        if self.label not in labels:
            raise ValueError(f"{self.model_path}: no label {self.label!r}; the model has {labels}")
        return model

    def model_language(self) -> str | None:
        return self.language

    def score(self, texts: pa.Array) -> np.ndarray:
        """P(label) for a text column (nulls score as empty text)."""
        return label_probabilities(self.model, prepare(texts), self.label)

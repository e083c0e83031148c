"""What the model-based signal operators (`classifier`, `importance`) share.

Both annotate first and decide second, as RedPajama-V2 does: they write a score column for every
document they score and drop only when a threshold is given. Each instance has a signal name that
prefixes its column and its drop reason and is its operator name in stats and rejects, so several
classifiers (or importance models) run side by side in one job. Their models are English unless
trained otherwise: rows in other languages get a null score and are never dropped.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def check_name(name: str | None) -> str | None:
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise ValueError("name must be lowercase letters, digits and '_', starting with a letter")
    return name


def check_languages(value: list[str] | str) -> list[str] | str:
    if isinstance(value, str) and value != "model":
        raise ValueError('languages must be a list of language codes or "model"')
    return value


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

"""Training the model-based signals: fastText classifiers and hashed n-gram importance models.

    read_texts(paths)                              text of JSONL(.gz)/Parquet documents or decant outputs
    train_classifier(positive, negative, out)      fastText supervised -> out (+ out.json with metrics)
    train_importance(target, source, out)          bucket counts -> smoothed log-probabilities (.npz + .json)

Both hold out a stratified share of each side (default 10%, chosen by a seeded shuffle), train on
the rest and measure on what was held out, so the figures stored beside a model are never taken
on its own training text. The model written is the one trained without the held-out share.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import io as eio
from engine.discovery import find_inputs
from engine.documents import DROP_REASON, TEXT
from operators.classifier import NEGATIVE, POSITIVE, label_probabilities, metadata_path, prepare
from operators.columns import LANGUAGE
from operators.importance import ImportanceModel, ngram_features

#: Input formats training reads (through the readers); decant output folders are read whole.
TRAINING_FORMATS = ("jsonl", "parquet")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def read_texts(paths: Iterable[str | os.PathLike], text_field: str = "auto", languages: Sequence[str] | None = None,
               max_docs: int | None = None, seed: int = 0) -> list[str]:
    """Non-empty texts of the documents in `paths`.

    A path is a decant output folder (its kept documents, via `read_documents`), or JSONL(.gz) /
    Parquet files, folders of them or globs (local or fsspec URLs), read by decant's readers, so
    `text_field` and CCNet's `raw_content` work as in a job. `languages` keeps documents whose
    `language` column is one of them (documents without one are kept). `max_docs` takes a seeded
    random sample of that many, in input order.
    """
    from operators.readers import detect_format, open_reader
    from operators.writers import read_documents

    texts: list[str] = []
    wanted = pa.array(list(languages), pa.string()) if languages else None

    def take(table: pa.Table | pa.RecordBatch) -> None:
        if TEXT not in table.schema.names or not table.num_rows:
            return
        mask = pc.greater(pc.utf8_length(pc.fill_null(table.column(TEXT), "")), 0)
        if DROP_REASON in table.schema.names:
            mask = pc.and_(mask, pc.is_null(table.column(DROP_REASON)))
        if wanted is not None and LANGUAGE in table.schema.names:
            lang = table.column(LANGUAGE).cast(pa.string())
            mask = pc.and_(mask, pc.or_kleene(pc.is_null(lang), pc.is_in(lang, value_set=wanted)))
        texts.extend(table.filter(mask).column(TEXT).to_pylist())

    for p in map(str, paths):
        if eio.exists(f"{p.rstrip('/')}/documents"):
            take(read_documents(p, columns=[TEXT, LANGUAGE]))
            continue
        found = find_inputs([p])
        if not found.files:
            why = "; ".join(f"{k}: {v}" for k, v in found.skipped.items())
            raise FileNotFoundError(f"input {p!r} matches no readable file ({why})")
        for f in found.files:
            fmt = detect_format(f)
            if fmt not in TRAINING_FORMATS:
                raise ValueError(f"{f}: training reads JSONL(.gz) or Parquet documents or a decant output "
                                 f"folder; this looks like {fmt}")
            before = len(texts)
            reader = open_reader(f, fmt, text_field=text_field)
            for batch in reader.read(f, 1024):
                take(batch)
            if len(texts) == before:
                problems = "; ".join(reader.errors) or f"no non-empty text (text field: {text_field!r})"
                raise ValueError(f"{f}: no documents read: {problems}")
    if max_docs is not None and len(texts) > max_docs:
        pick = np.sort(np.random.default_rng(seed).choice(len(texts), size=max_docs, replace=False))
        texts = [texts[i] for i in pick.tolist()]
    return texts


def shuffle_words(text: str, rng: random.Random) -> str:
    """The text with the words of every line in random order: the same words, no syntax."""
    out = []
    for line in text.split("\n"):
        words = line.split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return "\n".join(out)


def split_heldout(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of n items; at least one held out when fraction > 0 and n > 1."""
    order = rng.permutation(n)
    k = int(round(n * fraction))
    if fraction > 0 and n > 1:
        k = min(max(k, 1), n - 1)
    return np.sort(order[k:]), np.sort(order[:k])


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def roc_auc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative
    (ties count half), from the Mann-Whitney U statistic with average ranks."""
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    s = np.concatenate([pos, neg])
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each distinct value's first copy
    ranks = (first_rank + (counts - 1) / 2.0)[inv]
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def binary_metrics(positive_scores: np.ndarray, negative_scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision, recall and F1 of "score >= threshold means positive", and the AUC."""
    tp = int((positive_scores >= threshold).sum())
    fp = int((negative_scores >= threshold).sum())
    fn = len(positive_scores) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "auc": round(roc_auc(positive_scores, negative_scores), 4),
            "positives": len(positive_scores), "negatives": len(negative_scores)}


# ---------------------------------------------------------------------------------------------
# fastText classifier
# ---------------------------------------------------------------------------------------------

def train_classifier(positive: Sequence[str], negative: Sequence[str], out: str | os.PathLike, *,
                     heldout: float = 0.1, seed: int = 0, epoch: int = 20, lr: float = 0.2, dim: int = 16,
                     word_ngrams: int = 2, min_count: int = 2, bucket: int = 200_000,
                     quantize: bool | None = None, cutoff: int = 50_000, threshold: float = 0.5,
                     shuffled_negatives: float = 0.0, language: str | None = None,
                     inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a fastText supervised model, positive vs negative texts, and write it to `out` with
    `out` minus suffix + .json (labels, language, held-out metrics, training settings).

    Texts are normalised as the `classifier` operator normalises them. fastText runs on one
    thread with a fixed seed, so a rebuild on the same versions gives the same model. `quantize`
    (default: when `out` ends in .ftz) compresses it with product quantisation, keeping the
    `cutoff` most useful words and n-grams and retraining after pruning.

    `shuffled_negatives`: add word-shuffled copies of that share of the training positives as
    negatives, so that the model learns from word order (bigrams) and not only from vocabulary:
    without them a bag-of-words model scores shuffled prose as high as the prose. The held-out
    figures always include `auc_vs_shuffled`: held-out positives against their own shuffled copies.
    """
    import fasttext

    out = Path(out)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sides = {POSITIVE: _nonempty(prepare(pa.array(list(positive), pa.string()))),
             NEGATIVE: _nonempty(prepare(pa.array(list(negative), pa.string())))}
    for label, texts in sides.items():
        if len(texts) < 2:
            raise ValueError(f"need at least 2 non-empty {label} documents, got {len(texts)}")
    train_rows: list[str] = []
    held: dict[str, list[str]] = {}
    shuffler = random.Random(seed)
    n_shuffled = 0
    for label, texts in sides.items():
        tr, ho = split_heldout(len(texts), heldout, rng)
        train_rows.extend(f"__label__{label} {texts[i]}" for i in tr.tolist())
        held[label] = [texts[i] for i in ho.tolist()]
        if label == POSITIVE and shuffled_negatives > 0:
            k = int(round(len(tr) * min(shuffled_negatives, 1.0)))
            picked = np.sort(rng.choice(tr, size=k, replace=False)) if k else []
            train_rows.extend(f"__label__{NEGATIVE} {shuffle_words(texts[i], shuffler)}" for i in picked)
            n_shuffled = k
    train_rows = [train_rows[i] for i in rng.permutation(len(train_rows)).tolist()]
    if quantize is None:
        quantize = out.suffix == ".ftz"
    settings = {"epoch": epoch, "lr": lr, "dim": dim, "wordNgrams": word_ngrams, "minCount": min_count,
                "bucket": bucket, "loss": "softmax", "thread": 1, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="decant-classifier-") as tmp:
        train_path = os.path.join(tmp, "train.txt")
        with open(train_path, "w", encoding="utf-8") as f:
            f.write("\n".join(train_rows) + "\n")
        with contextlib.redirect_stderr(io.StringIO()), zero_filled_allocations() as zeroed:
            if not zeroed:  # more threads than blocks fill the whole matrix, at the cost of determinism
                settings["thread"] = 11
            model = fasttext.train_supervised(input=train_path, verbose=0, **settings)
            if quantize:
                model.quantize(input=train_path, qnorm=True, retrain=True, cutoff=cutoff,
                               thread=settings["thread"], verbose=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))
    metrics: dict[str, Any] = {}
    if held[POSITIVE] and held[NEGATIVE]:
        held_pos = label_probabilities(model, held[POSITIVE], POSITIVE)
        metrics = binary_metrics(held_pos, label_probabilities(model, held[NEGATIVE], POSITIVE), threshold)
        shuffled = [shuffle_words(t, shuffler) for t in held[POSITIVE]]
        metrics["auc_vs_shuffled"] = round(roc_auc(held_pos, label_probabilities(model, shuffled, POSITIVE)), 4)
    meta = {
        "kind": "fasttext-classifier", "label": POSITIVE, "labels": [POSITIVE, NEGATIVE], "language": language,
        "normalisation": "operators.langid.normalize (newlines -> spaces, trimmed)",
        "heldout": {"fraction": heldout, **metrics},
        "training": {"positives": len(sides[POSITIVE]) - len(held[POSITIVE]),
                     "negatives": len(sides[NEGATIVE]) - len(held[NEGATIVE]),
                     "shuffled_negatives": shuffled_negatives, "shuffled_negative_docs": n_shuffled,
                     "fasttext": settings, "quantized": bool(quantize), "cutoff": cutoff if quantize else None,
                     "fasttext_version": _version("fasttext-numpy2")},
        "inputs": inputs or {},
        "model_bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    metadata_path(out).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


@contextlib.contextmanager
def zero_filled_allocations():
    """Make malloc return zero-filled memory while fastText trains (glibc; elsewhere a no-op).

    fasttext-numpy2 stores its matrices in uninitialised aligned buffers, and fastText's random
    initialisation with fewer than 10 threads fills only the first thread/10 of the input matrix;
    upstream fastText's zero-filled vectors made the rest zeros, here it is whatever the heap held,
    which trains into NaN ("Encountered NaN") or garbage weights depending on the process's history.
    glibc's M_PERTURB fills each allocation with the complement of the byte given: 0xFF -> zeros,
    which restores upstream's behaviour and keeps one-thread training deterministic.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        yield False
        return
    m_perturb = -6
    ok = bool(mallopt(m_perturb, 0xFF))
    try:
        yield ok
    finally:
        if ok:
            mallopt(m_perturb, 0)


def _nonempty(texts: list[str]) -> list[str]:
    return [t for t in texts if t]


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# Importance model
# ---------------------------------------------------------------------------------------------

def bucket_counts(texts: Sequence[str], buckets: int, chunk: int = 2048) -> tuple[np.ndarray, int, int]:
    """(feature count per bucket, number of texts, number of words) over all texts."""
    counts = np.zeros(buckets, dtype=np.int64)
    words = 0
    for lo in range(0, len(texts), chunk):
        feats, _, nwords = ngram_features(texts[lo:lo + chunk], buckets)
        counts += np.bincount(feats, minlength=buckets)
        words += int(nwords.sum())
    return counts, len(texts), words


def fit_importance(target: Sequence[str], source: Sequence[str], buckets: int, smoothing: float,
                   meta: dict[str, Any] | None = None) -> ImportanceModel:
    """Additive smoothing per side: p[b] = (count[b] + a) / (total + a * buckets)."""
    tables, means = [], []
    for texts in (target, source):
        counts, ndocs, nwords = bucket_counts(texts, buckets)
        total = counts.sum() + smoothing * buckets
        tables.append(np.log((counts + smoothing) / total))
        means.append(max(nwords / max(ndocs, 1), 1e-9))
    return ImportanceModel(tables[0], tables[1], means[0], means[1], meta)


def train_importance(target: Sequence[str], source: Sequence[str], out: str | os.PathLike, *,
                     buckets: int = 1 << 18, smoothing: float = 1.0, heldout: float = 0.1, seed: int = 0,
                     language: str | None = None, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit target and source bucket distributions and write the model (.npz) and a JSON summary
    beside it (held-out AUC of the weight, with and without length correction)."""
    if buckets < 2:
        raise ValueError("buckets must be at least 2")
    if smoothing <= 0:
        raise ValueError("smoothing must be > 0 (a bucket never seen would have probability 0)")
    out = Path(out)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sides = {"target": [t for t in target if t], "source": [t for t in source if t]}
    train: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    for side, texts in sides.items():
        if len(texts) < 2:
            raise ValueError(f"need at least 2 non-empty {side} documents, got {len(texts)}")
        tr, ho = split_heldout(len(texts), heldout, rng)
        train[side] = [texts[i] for i in tr.tolist()]
        held[side] = [texts[i] for i in ho.tolist()]
    meta = {"language": language, "buckets": buckets, "smoothing": smoothing,
            "features": "word unigrams + bigrams (MinHash normalisation), xxh3_64 / fmix64 mod buckets",
            "training": {"target_docs": len(train["target"]), "source_docs": len(train["source"])},
            "inputs": inputs or {}}
    model = fit_importance(train["target"], train["source"], buckets, smoothing, meta)
    evaluation: dict[str, Any] = {"fraction": heldout}
    if held["target"] and held["source"]:
        for corrected in (False, True):
            key = "auc_length_corrected" if corrected else "auc"
            evaluation[key] = round(roc_auc(model.weights(held["target"], corrected),
                                            model.weights(held["source"], corrected)), 4)
        evaluation.update(targets=len(held["target"]), sources=len(held["source"]))
    model.meta["heldout"] = evaluation
    model.meta["mean_words"] = {"target": round(model.mean_words_target, 2),
                                "source": round(model.mean_words_source, 2)}
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    summary = {"kind": "hashed-ngram-importance", **model.meta, "model_bytes": out.stat().st_size,
               "seconds": round(time.perf_counter() - t0, 2)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary

"""What a report shows, gathered from the files of a finished output (a local folder or an fsspec URL).

Documents and rejects are read through the writers' own output reader, one file at a time and only
the columns needed; stats.json, the job record and duplicates.parquet through fsspec. Partition
values are taken from the columns inside the files, never from folder names: folder names are
encoded (and shortened with a hash when long), the exact value is in the file.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import io as eio
from engine.plan import WorkLayout
from operators.columns import BUCKET, LANGUAGE, PERPLEXITY
from operators.writers import iter_documents, iter_rejects

#: Label of a document without a language value (null, empty, or no language column).
NO_LANGUAGE = "unknown"
#: Label of a document without a bucket value.
NO_BUCKET = "none"
#: The percentiles a perplexity step uses when its job does not say.
DEFAULT_PERCENTILES = [30, 60]


@dataclass
class DocumentCounts:
    """Kept documents per (language, bucket) label; labels are the exact values, as text."""

    files: int = 0
    counts: Counter = field(default_factory=Counter)
    has_language: bool = False

    @property
    def has_bucket(self) -> bool:
        return any(b != NO_BUCKET for _, b in self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def per_language(self) -> Counter:
        by_lang: Counter = Counter()
        for (lang, _), k in self.counts.items():
            by_lang[lang] += k
        return by_lang

    def buckets(self) -> list[str]:
        return sorted({b for _, b in self.counts}, key=bucket_order)


@dataclass
class Cutoffs:
    """The perplexity cut-offs of one language; `source` is "model" (the job's cut-offs file) or "data"."""

    values: list[float]
    source: str


@dataclass
class PerplexityData:
    values: dict[str, np.ndarray] = field(default_factory=dict)
    cutoffs: dict[str, Cutoffs] = field(default_factory=dict)
    percentiles: list[int] = field(default_factory=lambda: list(DEFAULT_PERCENTILES))
    cutoffs_file: str = ""

    @property
    def present(self) -> bool:
        return any(len(v) for v in self.values.values())


@dataclass
class Drop:
    operator: str
    reason: str
    documents: int


@dataclass
class OperatorThroughput:
    operator: str
    docs_in: int
    docs_out: int
    dropped: int
    seconds: float
    docs_per_s: float | None
    mb_per_s: float | None
    share: float | None
    cpu_seconds: float | None
    docs_per_cpu_s: float | None


@dataclass
class ReportData:
    out: str
    stats: dict[str, Any] | None
    job: dict[str, Any]
    documents: DocumentCounts
    perplexity: PerplexityData
    drops: list[Drop]
    drops_source: str
    #: Cluster sizes (kept + removed), largest first; None when the output has no duplicates.parquet.
    duplicates: np.ndarray | None
    throughput: list[OperatorThroughput]


def value_label(value: Any, missing: str) -> str:
    """A partition value as the report names it: strings as they are, other types as text, nulls as `missing`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else missing


_BUCKET_RANK = {"head": 0, "middle": 1, "tail": 2}


def bucket_order(label: str) -> tuple:
    """head, middle, tail, then other values (numbers by value, then text), then no bucket."""
    if label in _BUCKET_RANK:
        return (0, _BUCKET_RANK[label], 0.0, "")
    if label == NO_BUCKET:
        return (3, 0, 0.0, "")
    try:
        return (1, 0, float(label), label)
    except ValueError:
        return (2, 0, 0.0, label)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        if not eio.exists(path):
            return None
        data = eio.read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _step_params(job: dict[str, Any], name: str) -> dict[str, Any] | None:
    for step in job.get("pipeline") or []:
        if isinstance(step, dict) and name in step:
            return dict(step[name] or {})
    return None


def _model_cutoffs(job: dict[str, Any], out: str) -> tuple[dict[str, tuple[float, ...]], str, list[int]]:
    """The perplexity cut-offs the job used: OUT/cutoffs.json with `cutoffs: auto`, else its cut-offs
    file or its models' one, when found on this machine."""
    params = _step_params(job, "perplexity")
    if params is None:
        return {}, "", list(DEFAULT_PERCENTILES)
    percentiles = list(params.get("percentiles") or DEFAULT_PERCENTILES)
    from operators.paths import REPO_ROOT
    from operators.perplexity import load_cutoffs, resolve_models_dir

    if params.get("cutoffs") == "auto":
        path = f"{out}/cutoffs.json"
        try:
            return (load_cutoffs(path, percentiles), path, percentiles) if eio.exists(path) else ({}, "", percentiles)
        except (OSError, ValueError, KeyError):
            return {}, "", percentiles
    try:
        models = resolve_models_dir(params.get("models", "bundled"))
        path = Path(params["cutoffs"]) if params.get("cutoffs") else models / "cutoffs.json"
        if params.get("cutoffs") and not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path
        if path.is_file():
            return load_cutoffs(path, percentiles), str(path), percentiles
    except (OSError, ValueError, KeyError):
        pass
    return {}, "", percentiles


def _column(table, name: str) -> list | None:
    return table.column(name).to_pylist() if name in table.schema.names else None


def collect_documents(out: str) -> tuple[DocumentCounts, dict[str, list[float]]]:
    """Counts per (language, bucket) and the finite, positive perplexities per language."""
    docs = DocumentCounts()
    ppl: dict[str, list[float]] = defaultdict(list)
    for table in iter_documents(out, columns=[LANGUAGE, BUCKET, PERPLEXITY]):
        docs.files += 1
        n = table.num_rows
        langs = _column(table, LANGUAGE)
        buckets = _column(table, BUCKET)
        docs.has_language |= langs is not None
        lang_labels = [value_label(v, NO_LANGUAGE) for v in langs] if langs is not None else [NO_LANGUAGE] * n
        bucket_labels = [value_label(v, NO_BUCKET) for v in buckets] if buckets is not None else [NO_BUCKET] * n
        docs.counts.update(zip(lang_labels, bucket_labels))
        values = _column(table, PERPLEXITY)
        if values is not None:
            for lang, v in zip(lang_labels, values):
                if isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
                    ppl[lang].append(float(v))
    return docs, ppl


def collect_perplexity(ppl: dict[str, list[float]], job: dict[str, Any], out: str) -> PerplexityData:
    cut, cut_source, percentiles = _model_cutoffs(job, out)
    data = PerplexityData(values={k: np.asarray(v) for k, v in ppl.items()}, percentiles=percentiles,
                          cutoffs_file=cut_source)
    for lang, vals in ppl.items():
        if lang in cut:
            data.cutoffs[lang] = Cutoffs([float(x) for x in cut[lang]], "model")
        elif len(vals) >= 2:
            data.cutoffs[lang] = Cutoffs([float(x) for x in np.percentile(vals, percentiles)], "data")
    return data


def collect_drops(out: str, stats: dict[str, Any] | None) -> tuple[list[Drop], str]:
    """Dropped documents per operator and reason: from stats.json, else counted in rejects/."""
    if stats and stats.get("operators"):
        drops = [Drop(op, str(reason), int(k)) for op, s in stats["operators"].items()
                 for reason, k in (s.get("dropped") or {}).items() if k]
        source = "stats.json"
    else:
        counted: Counter = Counter()
        for table in iter_rejects(out, columns=["operator", "reason"]):
            ops = _column(table, "operator") or [None] * table.num_rows
            reasons = _column(table, "reason") or [None] * table.num_rows
            counted.update((value_label(op, "unknown"), value_label(r, "dropped")) for op, r in zip(ops, reasons))
        drops = [Drop(op, r, k) for (op, r), k in counted.items()]
        source = "rejects/"
    return sorted(drops, key=lambda d: (-d.documents, d.operator, d.reason)), source


def collect_duplicates(out: str) -> np.ndarray | None:
    """Sizes of the duplicate clusters in OUT/duplicates.parquet (a cluster: its removed rows and the kept one)."""
    path = f"{out}/duplicates.parquet"
    if not eio.exists(path):
        return None
    t = eio.read_parquet(path, columns=["id", "cluster_id", "kept_id"])
    members: dict[Any, set] = defaultdict(set)
    for cid, did, kid in zip(t.column("cluster_id").to_pylist(), t.column("id").to_pylist(),
                             t.column("kept_id").to_pylist()):
        members[cid].update((did, kid))
    return np.array(sorted((len(s) for s in members.values()), reverse=True), dtype=np.int64)


def collect_throughput(stats: dict[str, Any] | None) -> list[OperatorThroughput]:
    """Per operator: documents and bytes per second of operator time (summed over workers: per core)."""
    ops = (stats or {}).get("operators") or {}
    total_s = sum(float(s.get("seconds") or 0) for s in ops.values())
    names = (["reader"] if "reader" in ops else []) + [n for n in ops if n != "reader"]
    rows = []
    for name in names:
        s = ops[name]
        sec = float(s.get("seconds") or 0)
        cpu = float(s.get("cpu_seconds") or 0)
        docs_in = int(s.get("docs_in") or 0)
        bytes_in = s.get("bytes_in") or 0
        rows.append(OperatorThroughput(
            operator=name, docs_in=docs_in, docs_out=int(s.get("docs_out") or 0),
            dropped=int(sum((s.get("dropped") or {}).values())), seconds=sec,
            docs_per_s=docs_in / sec if sec > 0 else None,
            mb_per_s=bytes_in / 1e6 / sec if sec > 0 and bytes_in else None,
            share=sec / total_s if total_s > 0 else None,
            cpu_seconds=cpu if "cpu_seconds" in s else None,
            docs_per_cpu_s=docs_in / cpu if cpu > 0 else None))
    return rows


def collect(out: str) -> ReportData:
    """Everything the report shows, from the files of a finished output."""
    out = str(out).rstrip("/")
    fs, path = eio.fs_and_path(out)
    if not fs.isdir(path):
        raise FileNotFoundError(f"{out} is not an output folder")
    stats = _read_json(f"{out}/stats.json")
    job = (_read_json(WorkLayout(out).job_marker) or {}).get("job") or {}
    docs, ppl = collect_documents(out)
    docs.has_language = docs.has_language or bool(stats and "langid" in (stats.get("operators") or {}))
    drops, drops_source = collect_drops(out, stats)
    return ReportData(out=out if "://" in out else str(Path(out).resolve()), stats=stats, job=job,
                      documents=docs, perplexity=collect_perplexity(ppl, job, out), drops=drops,
                      drops_source=drops_source, duplicates=collect_duplicates(out),
                      throughput=collect_throughput(stats))

"""Helpers shared by the readers: batch accumulation, stable fallback ids, parameter checks."""
from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from engine.documents import BASE_COLUMNS, DROP_REASON, make_batch
from operators.columns import HTML

DOC_COLUMNS = BASE_COLUMNS + (HTML, DROP_REASON)
_EXTRA_SCHEMA = pa.schema([pa.field(HTML, pa.string()), pa.field(DROP_REASON, pa.string())])


def stable_id(shard: str, offset: Any) -> str:
    """Id for a record that has none: sha1 of shard name and record offset (same every run)."""
    return hashlib.sha1(f"{shard}:{offset}".encode()).hexdigest()


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


class RowBuffer:
    """Collects document rows and emits a batch at `batch_size` rows or `max_bytes` of content,
    so memory is bounded by the batch, not by the shard (one huge page cannot pile up 1000x)."""

    def __init__(self, batch_size: int, max_bytes: int = 16 << 20) -> None:
        self.batch_size = max(1, int(batch_size))
        self.max_bytes = max_bytes
        self.cols: dict[str, list] = {c: [] for c in DOC_COLUMNS}
        self.n = 0
        self.nbytes = 0

    def add(self, id=None, url=None, date=None, source=None, html=None, text=None, reason=None) -> None:
        c = self.cols
        c["id"].append(id)
        c["url"].append(url)
        c["date"].append(date)
        c["source"].append(source)
        c["html"].append(html)
        c["text"].append(text)
        c[DROP_REASON].append(reason)
        self.n += 1
        self.nbytes += len(html or "") + len(text or "")

    def full(self) -> bool:
        return self.n >= self.batch_size or self.nbytes >= self.max_bytes

    def flush(self) -> pa.RecordBatch:
        batch = make_batch(self.cols, _EXTRA_SCHEMA)
        self.cols = {c: [] for c in DOC_COLUMNS}
        self.n = 0
        self.nbytes = 0
        return batch


def check_params(fmt: str, params: dict, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"reader {fmt!r}: unknown option(s) {unknown}; known: {sorted(allowed)}")

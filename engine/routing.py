"""Running an operator on a batch and routing the rows it drops.

Documents leave the chain only through a keep mask with a reason: the engine (never the operator)
writes the dropped rows to the rejects and counts them, so that every input document is accounted
for. Rows a reader could not turn into documents carry `_drop_reason` and are routed the same way,
as the `reader`'s drops.
"""
from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import pyarrow as pa

from engine.documents import DROP_REASON, filter_rows, string_bytes
from engine.operator import Operator, Result
from engine.stats import UnitStats

READER = "reader"


class RejectSink(Protocol):
    def write(self, operator: str, batch: pa.RecordBatch, reasons: np.ndarray,
              details: dict[str, pa.Array] | None = None) -> None: ...


class Timer:
    """Wall and CPU seconds of a block, added to one operator's counters."""

    def __init__(self, stats: UnitStats, name: str) -> None:
        self.s = stats.op(name)

    def __enter__(self) -> Timer:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.s.seconds += time.perf_counter() - self.t0
        self.s.cpu_seconds += time.process_time() - self.c0


def route(name: str, res: Result, docs_in: int, rejects: RejectSink, stats: UnitStats,
          bytes_in: int = 0) -> pa.RecordBatch:
    """The kept rows of `res`; the dropped ones go to the rejects with their reasons, counted."""
    batch = res.batch
    if batch.num_rows != docs_in:
        raise RuntimeError(f"operator {name!r} returned {batch.num_rows} rows for {docs_in}: "
                           "drop rows with Result(keep=..., reasons=...), never by filtering the batch")
    s = stats.op(name)
    s.docs_in += docs_in
    s.bytes_in += bytes_in
    for k, v in (res.counts or {}).items():
        s.counts[k] = s.counts.get(k, 0) + int(v)
    if res.keep is None or res.keep.all():
        s.docs_out += docs_in
        return batch
    keep = res.keep
    reasons = np.asarray(res.reasons, dtype=object)[~keep]
    reasons = np.array(["dropped" if r is None or r == "" else str(r) for r in reasons], dtype=object)
    details = None
    if res.details:
        drop = pa.array(~keep)
        details = {k: pa.array(v, pa.string()) if not isinstance(v, (pa.Array, pa.ChunkedArray)) else v
                   for k, v in res.details.items()}
        details = {k: v.filter(drop) for k, v in details.items()}
    rejects.write(name, filter_rows(batch, ~keep), reasons, details)
    uniq, counts = np.unique(reasons.astype(str), return_counts=True)
    s.docs_out += int(keep.sum())
    for r, c in zip(uniq.tolist(), counts.tolist()):
        s.dropped[r] = s.dropped.get(r, 0) + c
    return filter_rows(batch, keep)


def run_operator(op: Operator, batch: pa.RecordBatch, rejects: RejectSink, stats: UnitStats) -> pa.RecordBatch:
    if batch.num_rows == 0:
        return batch
    nbytes = string_bytes(batch, op.inputs)
    elsewhere = op.external_cpu_seconds()
    with Timer(stats, op.name):
        res = op.process(batch)
    stats.op(op.name).cpu_seconds += op.external_cpu_seconds() - elsewhere
    return route(op.name, res, batch.num_rows, rejects, stats, nbytes)


def run_apply(op, batch: pa.RecordBatch, table: pa.Table | None, rejects: RejectSink,
              stats: UnitStats) -> pa.RecordBatch:
    """A global operator's decision (its reduce output for this shard) applied to a batch."""
    if batch.num_rows == 0:
        return batch
    nbytes = string_bytes(batch, op.inputs)
    with Timer(stats, op.name):
        res = op.apply(batch, table)
    return route(op.name, res, batch.num_rows, rejects, stats, nbytes)


def route_reader_drops(batch: pa.RecordBatch, content_columns: tuple[str, ...], rejects: RejectSink,
                       stats: UnitStats) -> pa.RecordBatch:
    """Rows the reader marked with `_drop_reason` go to the rejects as the reader's drops."""
    n = batch.num_rows
    res = Result(batch)
    if DROP_REASON in batch.schema.names:
        reasons = batch.column(DROP_REASON).to_numpy(zero_copy_only=False)
        keep = np.array([r is None for r in reasons], dtype=bool)
        res = Result(batch.drop_columns([DROP_REASON]), keep, reasons)
    return route(READER, res, n, rejects, stats, string_bytes(res.batch, content_columns))

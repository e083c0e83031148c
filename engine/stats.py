"""Counters per operator, merged across shards and workers, and the accounting check.

Every input document is either kept or dropped by exactly one operator with a reason, so
`documents_read == documents_kept + sum(dropped)` must hold; `check()` says whether it does.
"""
from __future__ import annotations

import copy
from typing import Any


def new_op_stats() -> dict[str, Any]:
    return {"docs_in": 0, "docs_out": 0, "dropped": {}, "seconds": 0.0, "bytes_in": 0}


class StageStats:
    """Counters of one unit of work (one shard through one stage)."""

    def __init__(self) -> None:
        self.operators: dict[str, dict[str, Any]] = {}
        self.reader: dict[str, Any] = {"records": {}, "skipped": {}, "errors": [], "documents": 0}
        self.written = 0

    def op(self, name: str) -> dict[str, Any]:
        if name not in self.operators:
            self.operators[name] = new_op_stats()
        return self.operators[name]

    def record(self, name: str, docs_in: int, docs_out: int, dropped: dict[str, int], seconds: float,
               bytes_in: int = 0) -> None:
        s = self.op(name)
        s["docs_in"] += docs_in
        s["docs_out"] += docs_out
        s["seconds"] += seconds
        s["bytes_in"] += bytes_in
        for k, v in dropped.items():
            s["dropped"][k] = s["dropped"].get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {"operators": self.operators, "reader": self.reader, "written": self.written}


def _merge_counts(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict):
            _merge_counts(dst.setdefault(k, {}), v)
        elif isinstance(v, list):
            dst.setdefault(k, []).extend(v)
        elif isinstance(v, (int, float)):
            dst[k] = dst.get(k, 0) + v
        else:
            dst[k] = v


def merge(units: list[dict[str, Any]], order: list[str]) -> dict[str, Any]:
    """Merge per-unit stats into the job's stats.json; `order` is the pipeline's operator order."""
    ops: dict[str, dict[str, Any]] = {}
    reader: dict[str, Any] = {"records": {}, "skipped": {}, "errors": [], "documents": 0}
    written = 0
    extra: dict[str, Any] = {}
    for u in units:
        for name, s in u.get("operators", {}).items():
            _merge_counts(ops.setdefault(name, new_op_stats()), copy.deepcopy(s))
        _merge_counts(reader, copy.deepcopy(u.get("reader", {})))
        written += u.get("written", 0)
        for k, v in u.get("global", {}).items():
            extra[k] = v
    ordered = {n: ops[n] for n in order if n in ops}
    ordered.update({n: s for n, s in ops.items() if n not in ordered})
    for s in ordered.values():
        s["seconds"] = round(s["seconds"], 4)
    dropped_by_op = {n: sum(s["dropped"].values()) for n, s in ordered.items() if s["dropped"]}
    dropped = sum(dropped_by_op.values())
    total = {
        "documents_read": reader["documents"],
        "documents_kept": written,
        "documents_dropped": dropped,
        "dropped_by_operator": dropped_by_op,
        "shard_errors": len(reader["errors"]),
    }
    total["accounting_ok"] = total["documents_read"] == written + dropped
    return {"total": total, "reader": reader, "operators": ordered, "global": extra}


def check(stats: dict[str, Any]) -> None:
    t = stats["total"]
    if not t["accounting_ok"]:
        raise AssertionError(
            f"accounting broken: read {t['documents_read']} != kept {t['documents_kept']} + dropped {t['documents_dropped']}")

"""Typed counters: per operator, per reader, per unit of work, and the job's stats.json.

Every input document is either kept or dropped by exactly one operator with a reason, so
`documents_read == documents_kept + documents_dropped` must hold; `Totals.accounting_ok` says
whether it does. A unit's `UnitStats` is what its manifest record holds; `JobStats.merge` is the
one place where units are added up. stats.json is `JobStats.to_dict()`, versioned by `schema`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Version of stats.json's layout (README, "stats.json").
SCHEMA = 1


def _add_counts(dst: dict[str, int], src: dict[str, int]) -> None:
    for k, v in src.items():
        dst[k] = dst.get(k, 0) + v


@dataclass
class OperatorStats:
    docs_in: int = 0
    docs_out: int = 0
    #: Dropped documents by reason.
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: CPU seconds (user + system, this process) beside the wall-clock `seconds`: per-core rates
    #: that stay true when the machine is shared.
    cpu_seconds: float = 0.0
    #: Bytes of the string columns the operator reads.
    bytes_in: int = 0
    #: The operator's own counters (`Result.counts`), e.g. rules skipped by language.
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, other: OperatorStats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.bytes_in += other.bytes_in
        _add_counts(self.dropped, other.dropped)
        _add_counts(self.counts, other.counts)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass
class ReaderStats:
    #: Rows the readers produced (documents and rows rejected by the reader alike).
    documents: int = 0
    #: Counters by group (`records` by type, `skipped` by reason, and any a reader adds).
    groups: dict[str, dict[str, int]] = field(default_factory=lambda: {"records": {}, "skipped": {}})
    #: What ended a shard early, "<shard>: <message>".
    errors: list[str] = field(default_factory=list)
    #: Shards that held no record at all.
    empty_shards: list[str] = field(default_factory=list)
    #: Shards whose reader raised: what it had not handed over is unknown, so nothing adds up.
    failed_shards: list[str] = field(default_factory=list)

    def add(self, other: ReaderStats) -> None:
        self.documents += other.documents
        for g, counts in other.groups.items():
            _add_counts(self.groups.setdefault(g, {}), counts)
        self.errors.extend(other.errors)
        self.empty_shards.extend(other.empty_shards)
        self.failed_shards.extend(other.failed_shards)

    def to_dict(self) -> dict[str, Any]:
        return {**{g: dict(c) for g, c in self.groups.items()}, "errors": list(self.errors),
                "empty_shards": sorted(self.empty_shards), "failed_shards": sorted(self.failed_shards),
                "documents": self.documents}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReaderStats:
        groups = {k: dict(v) for k, v in d.items() if isinstance(v, dict)}
        return cls(documents=int(d.get("documents", 0)), groups=groups or {"records": {}, "skipped": {}},
                   errors=list(d.get("errors", [])), empty_shards=list(d.get("empty_shards", [])),
                   failed_shards=list(d.get("failed_shards", [])))


@dataclass
class UnitStats:
    """One unit of work: a shard through one stage, or a stage's reduce."""

    unit: str = ""
    shard: str | None = None
    operators: dict[str, OperatorStats] = field(default_factory=dict)
    reader: ReaderStats = field(default_factory=ReaderStats)
    #: Documents written to documents/ by this unit.
    written: int = 0
    #: Files the unit committed (documents, rejects, stage output, map output; not its record).
    objects_written: int = 0
    #: The same by kind: documents, rejects, carry (stage output), map:<operator>.
    objects: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    #: The process that ran it: pid, host, role, max_rss_mb, cpu_seconds (engine.metrics).
    worker: dict[str, Any] = field(default_factory=dict)
    #: What a global operator's reduce returned, by operator name.
    global_: dict[str, dict[str, Any]] = field(default_factory=dict)

    def op(self, name: str) -> OperatorStats:
        if name not in self.operators:
            self.operators[name] = OperatorStats()
        return self.operators[name]

    def to_dict(self) -> dict[str, Any]:
        d = {"unit": self.unit, "operators": {n: dataclasses.asdict(s) for n, s in self.operators.items()},
             "reader": self.reader.to_dict(), "written": self.written,
             "objects_written": self.objects_written, "objects": dict(self.objects),
             "wall_seconds": round(self.wall_seconds, 4),
             "worker": self.worker, "global": self.global_}
        if self.shard is not None:
            d["shard"] = self.shard
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitStats:
        names = {f.name for f in dataclasses.fields(OperatorStats)}
        ops = {n: OperatorStats(**{k: v for k, v in s.items() if k in names}) for n, s in d.get("operators", {}).items()}
        return cls(unit=d.get("unit", ""), shard=d.get("shard"), operators=ops,
                   reader=ReaderStats.from_dict(d.get("reader", {})), written=int(d.get("written", 0)),
                   objects_written=int(d.get("objects_written", 0)), objects=dict(d.get("objects") or {}),
                   wall_seconds=float(d.get("wall_seconds", 0.0)), worker=dict(d.get("worker") or {}),
                   global_=dict(d.get("global", {})))


@dataclass
class Totals:
    documents_read: int = 0
    documents_kept: int = 0
    documents_dropped: int = 0
    dropped_by_operator: dict[str, int] = field(default_factory=dict)
    shard_errors: int = 0
    #: Shards whose reader failed part-way (their unread records are unaccounted for).
    reader_failures: int = 0

    @property
    def accounting_ok(self) -> bool:
        return self.documents_read == self.documents_kept + self.documents_dropped and not self.reader_failures

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "accounting_ok": self.accounting_ok}


@dataclass
class JobStats:
    """stats.json: totals, the readers' counters, each operator's, the global steps', the job's."""

    total: Totals = field(default_factory=Totals)
    reader: ReaderStats = field(default_factory=ReaderStats)
    operators: dict[str, OperatorStats] = field(default_factory=dict)
    global_: dict[str, dict[str, Any]] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=dict)
    #: Input files read, and entries not read with why (engine.discovery).
    input: dict[str, Any] = field(default_factory=dict)
    #: Objects the units of each stage committed (on object storage each is a few requests).
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: int = SCHEMA

    @classmethod
    def merge(cls, units: list[UnitStats], order: list[str]) -> JobStats:
        """Add up units; operators in pipeline order (`order`), then any others."""
        ops: dict[str, OperatorStats] = {}
        reader = ReaderStats()
        written = 0
        glob: dict[str, dict[str, Any]] = {}
        said: dict[tuple[str, str, str], str] = {}
        for u in units:
            for name, s in u.operators.items():
                ops.setdefault(name, OperatorStats()).add(s)
            reader.add(_once_per_file(u, said))
            written += u.written
            glob.update(u.global_)
        ordered = {n: ops[n] for n in order if n in ops}
        ordered.update({n: s for n, s in ops.items() if n not in ordered})
        for s in ordered.values():
            s.seconds = round(s.seconds, 4)
            s.cpu_seconds = round(s.cpu_seconds, 4)
        by_op = {n: s.dropped_total for n, s in ordered.items() if s.dropped}
        total = Totals(documents_read=reader.documents, documents_kept=written,
                       documents_dropped=sum(by_op.values()), dropped_by_operator=by_op,
                       shard_errors=len(reader.errors), reader_failures=len(reader.failed_shards))
        return cls(total=total, reader=reader, operators=ordered, global_=glob, objects=objects_by_stage(units))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "total": self.total.to_dict(), "reader": self.reader.to_dict(),
                "operators": {n: dataclasses.asdict(s) for n, s in self.operators.items()},
                "global": self.global_, "job": self.job, "input": self.input, "objects": self.objects}


def objects_by_stage(units: list[UnitStats]) -> dict[str, dict[str, Any]]:
    """{stage: units, objects_written, per_unit, max_per_unit, by_kind} over the stages' units
    (a unit named `stage-N/shard-...`; reduces are not counted)."""
    out: dict[str, dict[str, Any]] = {}
    for u in units:
        stage, _, rest = u.unit.partition("/")
        if not rest.startswith("shard-"):
            continue
        s = out.setdefault(stage, {"units": 0, "objects_written": 0, "max_per_unit": 0, "by_kind": {}})
        s["units"] += 1
        s["objects_written"] += u.objects_written
        s["max_per_unit"] = max(s["max_per_unit"], u.objects_written)
        _add_counts(s["by_kind"], u.objects)
    for s in out.values():
        s["per_unit"] = round(s["objects_written"] / s["units"], 2)
    return dict(sorted(out.items(), key=lambda kv: (len(kv[0]), kv[0])))  # stage-2 before stage-10


def _once_per_file(u: UnitStats, said: dict[tuple[str, str, str], str]) -> ReaderStats:
    """A unit's reader stats without what another range of the same file already said: a file that
    fails or cannot be opened counts once however many units it was split into."""
    r = u.reader
    if u.shard is None or not (r.errors or r.failed_shards):
        return r

    def new(kind: str, items: list[str]) -> list[str]:
        out = [x for x in items if said.setdefault((u.shard, kind, x), u.unit) == u.unit]
        return out
    return dataclasses.replace(r, errors=new("error", r.errors), failed_shards=new("failed", r.failed_shards))


def check(stats: dict[str, Any]) -> None:
    """Raise when a stats.json's counts do not add up."""
    t = stats["total"]
    if not t["accounting_ok"]:
        raise AssertionError(
            f"accounting broken: read {t['documents_read']} != kept {t['documents_kept']} + dropped {t['documents_dropped']}")

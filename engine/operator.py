"""The operator contract.

An operator declares the columns it reads and writes and the resources it needs, loads its models
once per worker in `setup()`, and turns a batch into a `Result`. A filter does two things in
order, as Data-Juicer splits them: `compute` writes its signals as columns, `decide` returns a keep
mask and a reason per dropped row. The engine (never the operator) routes dropped rows to the
rejects and counts them, so every decision is recorded.

A global operator (line dedup, MinHash dedup) needs the whole corpus. It runs in three phases
around a barrier: `map` on every shard emits keyed rows, `reduce` runs once over all of them
(with the executor's parallelism, through a `GlobalContext`) and writes one small table per
shard, and `apply` reads that table when the shard passes again.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one instance of the operator needs; the Ray executor sizes actors from it."""

    cpus: float = 1.0
    memory_mb: int = 512


@dataclasses.dataclass
class Result:
    """What `process` returns: the batch with new columns, and which rows go on.

    `keep` is a bool mask (None keeps all). `reasons` holds, for each dropped row, why
    (an object array aligned with the batch; entries for kept rows are ignored).
    """

    batch: pa.RecordBatch
    keep: np.ndarray | None = None
    reasons: np.ndarray | Sequence[str | None] | None = None

    def __post_init__(self) -> None:
        if self.keep is not None:
            self.keep = np.asarray(self.keep, dtype=bool)
            if len(self.keep) != self.batch.num_rows:
                raise ValueError("keep mask length does not match the batch")
            if self.reasons is None:
                self.reasons = np.full(self.batch.num_rows, "dropped", dtype=object)
            else:
                self.reasons = np.asarray(self.reasons, dtype=object)


class Params(BaseModel):
    """Base of every operator's parameters: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Operator:
    """A per-document step. Subclasses set the class attributes and implement `process`."""

    name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ("text",)
    outputs: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    Params: ClassVar[type[Params]] = Params

    def __init__(self, **params: Any) -> None:
        self.params = type(self).Params(**params)
        self._ready = False

    def setup(self) -> None:
        """Load models and other heavy state; called once per worker before the first batch."""

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def process(self, batch: pa.RecordBatch) -> Result:
        raise NotImplementedError

    def output_columns(self) -> tuple[str, ...]:
        """The columns this configured instance adds (may depend on parameters)."""
        return self.outputs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class Filter(Operator):
    """compute signals, then decide. Signals stay in the batch for kept and dropped rows alike."""

    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch

    def decide(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def process(self, batch: pa.RecordBatch) -> Result:
        batch = self.compute(batch)
        keep, reasons = self.decide(batch)
        return Result(batch, keep, reasons)


class GlobalContext:
    """What a global operator's reduce phase gets from the executor.

    `map_files(p)` lists the map outputs of partition p (one file per shard that emitted rows),
    `parallel(fn, items)` runs a picklable module-level function over items with the executor's
    workers (a process pool locally, Ray tasks on a cluster) and returns results in order,
    `write_apply(shard, table)` stores what `apply` will get for that shard, and `workdir` is a
    private folder for intermediate files.
    """

    def __init__(self, workdir: str, num_shards: int, num_partitions: int,
                 parallel: Callable[[Callable, list], list], shard_names: list[str],
                 output_dir: str = "") -> None:
        self.workdir = workdir
        #: The job's output folder (for files such as OUT/duplicates.parquet).
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.num_partitions = num_partitions
        self._parallel = parallel
        self.shard_names = shard_names

    def map_dir(self, partition: int) -> str:
        return f"{self.workdir}/map/part-{partition:05d}"

    def map_files(self, partition: int) -> list[str]:
        from engine.io import listdir_files
        return listdir_files(self.map_dir(partition), ".parquet")

    def apply_path(self, shard: int) -> str:
        return f"{self.workdir}/apply/shard-{shard:06d}.parquet"

    def write_apply(self, shard: int, table: pa.Table) -> None:
        from engine.io import write_parquet_atomic
        write_parquet_atomic(table, self.apply_path(shard))

    def parallel(self, fn: Callable, items: list) -> list:
        return self._parallel(fn, items)


class GlobalOperator(Operator):
    """A step that sees the whole corpus: map -> barrier (reduce) -> apply."""

    #: Number of hash partitions the map output is shuffled into.
    def num_partitions(self) -> int:
        return int(getattr(self.params, "partitions", 16))

    def process(self, batch: pa.RecordBatch) -> Result:  # pragma: no cover - the engine calls phases
        raise TypeError(f"{self.name} is global: the engine runs map/reduce/apply, not process")

    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        """Rows to shuffle, with an int `_partition` column in [0, num_partitions)."""
        raise NotImplementedError

    def reduce(self, ctx: GlobalContext) -> dict:
        """Runs once after every shard's map; writes apply tables; returns stats to record."""
        raise NotImplementedError

    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        """Uses this shard's reduce output (None when reduce wrote nothing for it)."""
        raise NotImplementedError


class Reader:
    """Turns one shard into document batches. Never raises on bad data: it counts and goes on.

    `stats` counts records by type and skips by reason; `errors` lists what ended a shard early
    (a truncated gzip member, a corrupt header) with the records before it kept.
    """

    format: ClassVar[str] = ""
    #: Column the reader fills with content: "html" (WARC) or "text" (WET, JSONL, Parquet).
    content_column: ClassVar[str] = "text"

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.stats: dict[str, Any] = {"records": {}, "skipped": {}}
        self.errors: list[str] = []

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        """Does a file starting with these (decompressed) bytes look like this format?"""
        return False

    def read(self, path: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def count(self, group: str, key: str, n: int = 1) -> None:
        d = self.stats.setdefault(group, {})
        d[key] = d.get(key, 0) + n


OPERATORS: dict[str, type[Operator]] = {}
READERS: dict[str, type[Reader]] = {}


def register(cls):
    """Class decorator: make an operator or a reader available to job files by its name."""
    if issubclass(cls, Reader):
        READERS[cls.format] = cls
    else:
        if not cls.name:
            raise ValueError(f"{cls.__name__} has no name")
        OPERATORS[cls.name] = cls
    return cls


def load_plugins() -> None:
    """Import every module of the `operators` package so their @register calls run."""
    import importlib
    import pkgutil

    import operators as pkg

    def walk(package):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            mod = importlib.import_module(info.name)
            if info.ispkg:
                walk(mod)

    walk(pkg)


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        load_plugins()
        _loaded = True


def get_operator(name: str) -> type[Operator]:
    if name not in OPERATORS:
        _ensure_loaded()
    return OPERATORS[name]


def get_reader(fmt: str) -> type[Reader]:
    if fmt not in READERS:
        _ensure_loaded()
    return READERS[fmt]

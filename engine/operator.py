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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from engine.partition_count import AUTO, DEFAULT_PARTITIONS
from engine.registry import register  # noqa: F401 - operators import it from here

if TYPE_CHECKING:
    from engine.reduce import GlobalContext


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one instance of the operator needs. The Ray executor sizes its actors from the largest
    over the fused chain (CPUs as a fraction of the cluster, memory as Ray's `memory` resource)."""

    cpus: float = 1.0
    memory_mb: int = 512


@dataclasses.dataclass
class Result:
    """What `process` returns: the batch with new columns, and which rows go on.

    `keep` is a bool mask (None keeps all). `reasons` holds, for each dropped row, why
    (an object array aligned with the batch; entries for kept rows are ignored). `details`:
    more columns (name -> values aligned with the batch) written as strings beside the reason of
    each dropped row, e.g. the document a duplicate matched (`kept_id`, `kept_in`). `counts`: more
    counters of the batch (name -> count), added up in stats.json `operators.<name>.counts`, e.g.
    the documents a rule was not applied to because of their language.
    """

    batch: pa.RecordBatch
    keep: np.ndarray | None = None
    reasons: np.ndarray | Sequence[str | None] | None = None
    details: dict[str, Any] | None = None
    counts: dict[str, int] | None = None

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

    kind: ClassVar[str] = "operator"
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

    #: Whether `preload` leaves nothing but memory behind (no thread, child process, open file or
    #: connection), so that a driver about to fork its local workers may run it once for them all.
    preload_before_fork: ClassVar[bool] = False

    def preload(self) -> None:
        """Set up, and load now what later batches would load on first use (e.g. every language's
        model): run in a driver about to fork workers, which then share it copy-on-write instead
        of each loading it again (CPU once, memory once)."""
        self.ensure_setup()

    def process(self, batch: pa.RecordBatch) -> Result:
        raise NotImplementedError

    def output_columns(self) -> tuple[str, ...]:
        """The columns this configured instance adds (may depend on parameters)."""
        return self.outputs

    def external_cpu_seconds(self) -> float:
        """CPU seconds this instance has spent so far outside the worker process (a helper child
        process); the engine adds what a batch adds to it to the operator's `cpu_seconds`."""
        return 0.0

    def expand(self) -> list["Operator"]:
        """The operators this step runs as (default: itself). A step whose configuration needs a
        barrier (e.g. perplexity buckets from cut-offs taken on the job's own documents) returns a
        per-document operator followed by a global one."""
        return [self]

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


class GlobalOperator(Operator):
    """A step that sees the whole corpus: map -> barrier (reduce) -> apply."""

    def num_partitions(self) -> int:
        """Number of hash partitions the map output is shuffled into: the `partitions` parameter,
        which the plan has resolved when it said `auto` (engine.partition_count)."""
        count = getattr(self.params, "partitions", DEFAULT_PARTITIONS)
        if count == AUTO:
            raise RuntimeError(f"{self.name}: partitions 'auto' not resolved: a job's plan "
                               "(engine.plan.make_plan) turns it into a count before anything runs")
        return int(count)

    def process(self, batch: pa.RecordBatch) -> Result:  # pragma: no cover - the engine calls phases
        raise TypeError(f"{self.name} is global: the engine runs map/reduce/apply, not process")

    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        """Rows to shuffle, with an int `_partition` column in [0, num_partitions)."""
        raise NotImplementedError

    def reduce(self, ctx: "GlobalContext") -> dict:
        """Runs once after every shard's map; writes apply tables; returns stats to record."""
        raise NotImplementedError

    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        """Uses this shard's reduce output (None when reduce wrote nothing for it)."""
        raise NotImplementedError

    def check_against(self, output: str) -> None:
        """Before anything runs, for each earlier output the job dedups against (`dedup.against`):
        raise ValueError saying why this step cannot compare with it (e.g. no index of this step
        there, or one built with other parameters). The default accepts every output."""

"""The barrier of a stage that ends in a global operator: its reduce, run once per job.

The reduce runs in the driver; its heavy work fans out through `ctx.parallel` (a process pool
locally, Ray tasks on a cluster). What it writes for each shard (`ctx.write_apply`) is what the
operator's `apply` gets when the shard passes through the next stage.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa

from engine import io as eio
from engine.metrics import worker_memory
from engine.plan import GlobalLayout, JobPlan
from engine.shuffle import MapPart, map_listing, write_work_table
from engine.stats import UnitStats


class GlobalContext:
    """What a global operator's reduce phase gets from the executor.

    `map_parts(p)` lists where the map rows of partition p are (row groups of the units' map
    files, engine.shuffle.MapPart; read them with engine.shuffle.read_map_parts),
    `parallel(fn, items)` runs a picklable module-level function over items with the executor's
    workers and returns results in order, `write_apply(shard, table)` stores what `apply` will get
    for that shard (`write_apply_all(table)`: what every shard without a table of its own gets),
    `workdir` is a private folder for intermediate files, `output_dir` the job's output (for files
    such as OUT/duplicates.parquet or OUT/index/) and `against` the earlier outputs to compare with.
    """

    def __init__(self, workdir: str, num_shards: int, num_partitions: int,
                 parallel: Callable[[Callable, list], list], shard_names: list[str], output_dir: str = "",
                 against: list[str] = ()) -> None:
        self.layout = GlobalLayout(workdir.rstrip("/"))
        self.workdir = self.layout.root
        self.output_dir = output_dir
        self.against = [a.rstrip("/") for a in against]
        self.num_shards = num_shards
        self.num_partitions = num_partitions
        self.shard_names = shard_names
        self._parallel = parallel
        self._map_listing: dict[str, int] | None = None

    def map_parts(self, partition: int) -> list[MapPart]:
        """Partition p in every unit's map file, units ascending (one listing per reduce)."""
        if self._map_listing is None:
            self._map_listing = map_listing(self.layout.map_dir)
        unit_dir, legacy = f"{self.layout.map_dir}/", f"{self.layout.legacy_map_dir(partition)}/"
        units = [MapPart(f, partition, n) for f, n in self._map_listing.items()
                 if "/" not in _after(f, unit_dir) and _after(f, unit_dir).startswith("unit-")]
        parts = units + [MapPart(f, None, n) for f, n in self._map_listing.items() if _after(f, legacy)]
        return sorted(parts, key=lambda m: m.path.rsplit("-", 1)[-1])  # by unit (shard-N before)

    def apply_path(self, shard: int) -> str:
        return self.layout.apply_file(shard)

    def write_apply(self, shard: int, table: pa.Table) -> None:
        """Read once by this job's next stage: a work file (no zstd, no dictionaries locally)."""
        write_work_table(table, self.layout.apply_file(shard))

    def write_apply_all(self, table: pa.Table) -> None:
        write_work_table(table, self.layout.apply_all_file)

    def parallel(self, fn: Callable, items: list) -> list:
        return self._parallel(fn, items)


def _after(path: str, prefix: str) -> str:
    """What follows `prefix` in `path` ("" when path is not under it); fsspec URLs and local paths alike."""
    i = path.find(prefix)
    return path[i + len(prefix):] if i >= 0 else ""


def run_reduce(plan: JobPlan, stage_index: int, op, parallel: Callable[[Callable, list], list]) -> UnitStats:
    """Run a global operator's reduce at a stage's barrier unless the manifest says it is done."""
    manifest = eio.Manifest(plan.work.manifest)
    unit = plan.work.reduce_unit(stage_index, op.name)
    if manifest.done(unit):
        return UnitStats.from_dict(manifest.get(unit))
    op.ensure_setup()
    gdir = plan.work.global_dir(stage_index, op.name)
    eio.remove(gdir.apply_dir)  # tables of an interrupted earlier reduce
    ctx = GlobalContext(gdir.root, len(plan.inputs), op.num_partitions(), parallel, plan.inputs, plan.out,
                        plan.spec.dedup.against)
    t0 = time.perf_counter()
    result = {"partitions": ctx.num_partitions, **(op.reduce(ctx) or {})}
    record = UnitStats(unit=unit, global_={op.name: result}, worker=worker_memory("driver"))
    record.op(op.name).seconds = time.perf_counter() - t0
    manifest.mark(unit, record.to_dict())
    return record

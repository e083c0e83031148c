"""The order every executor follows: each stage's units, then its barrier (reduce) if any.

A unit is an input file or a range of one (`plan.units`, engine.splitting); executors schedule
units by their index there, so a big file split into ranges keeps every worker busy."""
from __future__ import annotations

from collections.abc import Callable

from engine import io as eio
from engine.graph import Graph
from engine.plan import JobPlan
from engine.reduce import run_reduce
from engine.shard_task import forget_apply_tables
from engine.stats import UnitStats

#: Runs every pending unit of a stage, calling on_done with each finished unit's stats.
RunStage = Callable[[JobPlan, int, Callable[[UnitStats], None]], None]
#: Runs a picklable function over items with the executor's workers; results in order.
Parallel = Callable[[Callable, list], list]


def run_stages(plan: JobPlan, graph: Graph, run_stage: RunStage, parallel: Parallel,
               on_done: Callable[[UnitStats], None]) -> None:
    for stage in graph.stages:
        run_stage(plan, stage.index, on_done)
        forget_apply_tables()  # units that ran in this process kept their file's tables
        missing = pending_shards(plan, stage.index)
        if missing:  # a worker wrote where the driver cannot see (e.g. memory:// is per process)
            raise RuntimeError(f"stage {stage.index}: unit(s) {missing[:5]} ran but left no record in "
                               f"{plan.work.manifest}; the output must be storage every worker shares")
        for op in stage.map_ops:
            run_reduce(plan, stage.index, op, parallel)


def pending_shards(plan: JobPlan, stage_index: int) -> list[int]:
    """Indexes in plan.units of the units of a stage without a manifest record, in plan order."""
    manifest = eio.Manifest(plan.work.manifest)
    done = set(manifest.units(f"stage-{stage_index}/"))
    return [i for i, u in enumerate(plan.units) if plan.work.unit(stage_index, u) not in done]

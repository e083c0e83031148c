"""A worker process's view of a job: the plan it was handed and the graph it built from it, once.

Executors create one `Worker` per process (the local pool's initializer, each Ray actor, or the
driver itself when it runs shards in-process); its operators are set up on first use and stay
loaded across shards and stages.
"""
from __future__ import annotations

from engine.graph import Graph
from engine.plan import JobPlan
from engine.shard_task import run_shard_stage
from engine.stats import UnitStats


class Worker:
    def __init__(self, plan: JobPlan, graph: Graph | None = None) -> None:
        self.plan = plan
        self.graph = graph if graph is not None else Graph(plan.spec, plan.packages)

    def run_shard(self, stage: int, shard: int) -> UnitStats:
        return run_shard_stage(self.plan, self.graph, stage, shard)


#: The worker of this process, set by the local executor's pool initializer.
_PROCESS_WORKER: Worker | None = None


def start_process_worker(plan: JobPlan, graph: Graph | None = None) -> None:
    """Pool initializer: build this process's worker (its graph) once, or take the graph a forked
    process inherited from the driver."""
    global _PROCESS_WORKER
    _PROCESS_WORKER = Worker(plan, graph)


def run_shard_in_process(stage: int, shard: int) -> UnitStats:
    """A pool task: one shard on this process's worker."""
    if _PROCESS_WORKER is None:
        raise RuntimeError("worker process not started: the pool needs start_process_worker as initializer")
    return _PROCESS_WORKER.run_shard(stage, shard)

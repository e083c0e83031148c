"""What runs on the Ray cluster: the shard actors, and reduce tasks run in a bounded window."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError

from engine.plan import JobPlan
from engine.stats import UnitStats
from engine.worker import Worker

try:  # the dead-actor error class moved between Ray versions
    from ray.exceptions import ActorDiedError as _ActorDied  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Ray
    _ActorDied = RayActorError
try:
    from ray.exceptions import ActorUnavailableError as _ActorUnavailable  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Ray
    _ActorUnavailable = RayActorError

#: Failures of the worker, not of the code: the shard is redone on a fresh actor.
WORKER_LOST = (RayActorError, _ActorDied, _ActorUnavailable)


class ShardWorker:
    """One worker: runs shards of any stage of the job in its process (operators set up once)."""

    def __init__(self, plan: JobPlan) -> None:
        self.worker = Worker(plan)

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def run(self, stage: int, shard: int) -> UnitStats:
        return self.worker.run_shard(stage, shard)


RemoteShardWorker = ray.remote(ShardWorker)

def _call(fn: Callable, item: Any) -> Any:
    return fn(item)


_remote_call = ray.remote(_call)


def run_tasks(fn: Callable, items: list, num_cpus: float, max_retries: int) -> list:
    """fn over items as Ray tasks, at most twice the cluster's CPUs at once; results in order."""
    if not items:
        return []
    window = max(2, 2 * int(float(ray.cluster_resources().get("CPU", 1.0)) or 1))
    remote = _remote_call.options(num_cpus=num_cpus, max_retries=max_retries, retry_exceptions=False)
    fn_ref = ray.put(fn)
    results: list[Any] = [None] * len(items)
    pending: dict[Any, int] = {}
    nxt = 0
    while nxt < len(items) or pending:
        while nxt < len(items) and len(pending) < window:
            pending[remote.remote(fn_ref, items[nxt])] = nxt
            nxt += 1
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results[pending.pop(ref)] = ray.get(ref)
    return results

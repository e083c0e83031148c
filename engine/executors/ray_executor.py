"""The Ray executor: the same units of work as the local executor, on a Ray cluster.

How work is laid out
- One actor per worker (`ShardWorker`), handed the job's plan when it starts. An actor runs the
  fused operator chain of a stage for a whole shard (`engine.shard_task.run_shard_stage`); it
  builds the job's graph once (engine.worker.Worker), so models load once per actor, not per
  shard, and stay loaded across stages.
- Units (input files, or ranges of big ones: engine.splitting) are scheduled to actors with at most `max_in_flight` shard calls outstanding per actor
  (one running, the rest queued in the actor so it never idles while the driver handles a result).
  The driver therefore never holds more than `workers * max_in_flight` pending calls: the rest of
  the shards wait in a plain list, nothing is queued unbounded in Ray. Shard results are small
  stats records; documents never pass through the driver or the object store: each actor reads
  its shard and writes its output files itself (shared storage: a local path on one machine, an
  fsspec URL such as s3:// on a cluster).
- Inside a shard, batches stream: the reader yields `executor.batch_size` documents at a time and
  each batch goes through the whole chain and into the writers before the next is read, so an
  actor's memory is bounded by one batch (plus the writers' row groups and the loaded models),
  not by the shard size.
- Global reduce phases (`parallel(fn, items)`) run as Ray tasks, at most a bounded window at once,
  results returned in the order of `items`.
- Actors get a fraction of a CPU (`num_cpus` below 1 when the cluster is small) so that the actors
  plus a reduce task always fit: 1-CPU actors filling both CPUs of a 2-core machine make any task
  that asks for a CPU wait forever.

Fault tolerance
- An actor whose process dies (killed, out of memory, node lost) fails its running and queued
  calls with RayActorError / ActorDiedError. The executor kills what is left of it, starts a new
  actor in its place and puts those shards back at the front of the queue; each shard may fail
  this way `max_retries` times before the job fails. A redo is safe because `run_shard_stage`
  writes into a staging folder of its own attempt (a still-running earlier attempt is not disturbed), renames the
  finished files into place under names derived from the shard index only (a half-finished
  commit is overwritten with identical files), and writes the shard's manifest record last:
  a shard is either done (record present, skipped) or redone from scratch; no document is lost
  or written twice.
- An exception raised by an operator (a bug, a bad parameter) is not retried: it fails the job
  at once with the worker's traceback, as with the local executor.
- The driver itself may die: the job's actors die with it (they are not detached) and a re-run
  into the same output resumes from the manifest (`engine.stages.pending_shards`), redoing only
  unfinished shards and reduces.
"""
from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from engine.executors.ray_cluster import absolute_plan, connect
from engine.executors.ray_tasks import WORKER_LOST, RemoteShardWorker, run_tasks
from engine.graph import Graph
from engine.plan import JobPlan
from engine.shard_task import unit_name
from engine.stages import pending_shards, run_stages
from engine.stats import UnitStats

class RayExecutor:
    name = "ray"

    def __init__(self, workers: int = 2, address: str | None = None, max_retries: int = 3,
                 max_in_flight: int = 2, num_cpus_per_worker: float | None = None,
                 runtime_env: dict[str, Any] | None = None, ship_code: bool | None = None,
                 shutdown: bool | None = None) -> None:
        self.workers = max(1, int(workers))
        self.address = address
        self.max_retries = max(0, int(max_retries))
        self.max_in_flight = max(1, int(max_in_flight))
        self.num_cpus_per_worker = num_cpus_per_worker
        self.runtime_env = runtime_env
        self.ship_code = ship_code
        self._shutdown = shutdown
        self._we_started_ray = False
        self.actors: list[Any] = []
        #: Worker process id of each actor slot (recorded when the actor starts).
        self.pids: list[int | None] = []
        #: Every actor replaced after its process died, as (slot, old pid, shard).
        self.replaced: list[tuple[int, int | None, int]] = []
        #: Number of shard attempts lost to a dead worker, per (stage, shard).
        self.failures: dict[tuple[int, int], int] = {}
        self._cpus = 1.0
        self._want_cpus = 1.0
        self._memory_mb = 0
        self._plan_ref: Any = None
        #: Where the code shipped to a cluster comes from (set by the caller that knows the
        #: project's layout; None: the cluster must already have the package).
        self.ship_runtime_env: Callable[[], dict[str, Any]] = lambda: {}
        self.actor_start_timeout = 300.0

    # ------------------------------------------------------------------ cluster
    def connect(self) -> None:
        if not ray.is_initialized():
            self._we_started_ray = connect(self.address, self.ship_code, self.runtime_env, self.ship_runtime_env)
        self._size_actors()

    def _size_actors(self) -> None:
        if self.num_cpus_per_worker is not None:
            self._cpus = float(self.num_cpus_per_worker)
            return
        total = float(ray.cluster_resources().get("CPU", 1.0))
        # what the fused chain asks for (its operators run one after another: the largest of their
        # `resources.cpus`), but at most half of the cluster's CPUs over all actors, so that reduce
        # tasks always find room
        self._cpus = round(max(0.01, min(self._want_cpus, total / (2 * self.workers))), 3)

    def _new_actor(self, slot: int) -> Any:
        opts: dict[str, Any] = {"num_cpus": self._cpus, "max_restarts": 0, "max_task_retries": 0}
        if self._memory_mb:
            opts["memory"] = int(self._memory_mb) * 2**20
        actor = RemoteShardWorker.options(**opts).remote(self._plan_ref)
        try:
            pid = ray.get(actor.pid.remote(), timeout=self.actor_start_timeout)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor, no_restart=True)
            raise RuntimeError(
                f"a worker actor (num_cpus={self._cpus}) did not start within {self.actor_start_timeout:.0f}s: "
                f"the cluster has {ray.available_resources()} free; lower --workers or add nodes") from None
        if slot < len(self.actors):
            self.actors[slot], self.pids[slot] = actor, pid
        else:
            self.actors.append(actor)
            self.pids.append(pid)
        return actor

    def _ensure_actors(self) -> None:
        while len(self.actors) < self.workers:
            self._new_actor(len(self.actors))

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):  # already dead
                ray.kill(a, no_restart=True)
        self.actors, self.pids = [], []
        shutdown = self._shutdown if self._shutdown is not None else self._we_started_ray
        if shutdown and ray.is_initialized():
            ray.shutdown()
            self._we_started_ray = False

    # --------------------------------------------------------------- scheduling
    def parallel(self, fn: Callable, items: list) -> list:
        """fn over items as Ray tasks (a bounded window at once); results in the order of items."""
        if items and not ray.is_initialized():
            self.connect()
        return run_tasks(fn, list(items), self._cpus, self.max_retries)

    def run_stage(self, plan: JobPlan, stage: int, on_done: Callable[[UnitStats], None]) -> None:
        todo: deque[int] = deque(pending_shards(plan, stage))
        if not todo:
            return
        self._ensure_actors()
        in_flight: dict[Any, tuple[int, int]] = {}       # ref -> (slot, shard)
        per_slot = [0] * len(self.actors)
        generation = [0] * len(self.actors)
        ref_gen: dict[Any, int] = {}

        def submit() -> None:
            for slot in range(len(self.actors)):
                while todo and per_slot[slot] < self.max_in_flight:
                    shard = todo.popleft()
                    ref = self.actors[slot].run.remote(stage, shard)
                    in_flight[ref] = (slot, shard)
                    ref_gen[ref] = generation[slot]
                    per_slot[slot] += 1

        submit()
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                slot, shard = in_flight.pop(ref)
                gen = ref_gen.pop(ref)
                if gen == generation[slot]:
                    per_slot[slot] -= 1
                try:
                    record = ray.get(ref)
                except WORKER_LOST as e:
                    self._lost(stage, shard, e)
                    todo.appendleft(shard)
                    if gen == generation[slot]:
                        # replace the dead actor once; its other calls fail too and are requeued
                        old = self.pids[slot]
                        with contextlib.suppress(Exception):  # already gone
                            ray.kill(self.actors[slot], no_restart=True)
                        generation[slot] += 1
                        per_slot[slot] = 0
                        self._new_actor(slot)
                        self.replaced.append((slot, old, shard))
                    continue
                except RayTaskError as e:
                    raise RuntimeError(f"stage {stage}, shard {shard} ({unit_name(plan, shard)}) failed:\n{e}") from e
                except RayError as e:  # object lost with its node, worker crash outside the actor
                    self._lost(stage, shard, e)
                    todo.appendleft(shard)
                    continue
                on_done(record)
            submit()

    def _lost(self, stage: int, shard: int, err: Exception) -> None:
        n = self.failures.get((stage, shard), 0) + 1
        self.failures[(stage, shard)] = n
        if n > self.max_retries:
            raise RuntimeError(f"stage {stage}, shard {shard}: its worker died {n} times "
                               f"(max_retries={self.max_retries}); last error: {type(err).__name__}: {err}")

    def run(self, plan: JobPlan, graph: Graph, on_done: Callable[[UnitStats], None] | None = None) -> None:
        on_done = on_done or (lambda rec: None)
        plan = absolute_plan(plan)
        # the fused chain runs its operators one after another: it needs the largest of their asks
        self._want_cpus = max((float(op.resources.cpus) for op in graph.operators), default=1.0)
        self._memory_mb = max((int(op.resources.memory_mb) for op in graph.operators), default=0)
        try:
            self.connect()
            self._plan_ref = ray.put(plan)
            self._ensure_actors()
            run_stages(plan, graph, self.run_stage, self.parallel, on_done)
        finally:
            self.close()

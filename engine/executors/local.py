"""The local executor: one machine, N worker processes (or in-process with one worker).

Shards of a stage are handed to a process pool whose processes each build the job's worker once
(engine.worker.start_process_worker), so models load once per process and stay loaded across
shards and stages. Workers are forked from the driver when it runs no other thread (they start
with its imports and graph in milliseconds, and with the models of operators that allow it
(`preload_before_fork`) already loaded by the driver, once for all), else from a forkserver
(engine.executors.pool_start).
A worker that dies (killed, out of memory) breaks the pool: the pool is rebuilt and the
unfinished shards are retried, up to max_retries; finished shards are safe in the manifest.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from engine.executors.pool_start import pool_context, prestart_forkserver, worker_env
from engine.graph import Graph
from engine.plan import JobPlan
from engine.stages import pending_shards, run_stages
from engine.stats import UnitStats
from engine.worker import Worker, run_shard_in_process, start_process_worker


def _start_pool_process(ppid: int, plan: JobPlan | None, graph: Graph | None = None,
                        env: dict[str, str] | None = None) -> None:
    """Pool initializer: end this process when the driver is gone (a killed driver otherwise leaves
    its workers running, racing the resumed job), then build the job's worker. `graph`: the
    driver's own (a forked worker inherits it); `env`: the driver's environment now (a forkserver's
    workers would otherwise have the one it had when the server started)."""
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    parent = os.getppid()  # the driver, or a forkserver, which ends when the driver does

    def driver_alive() -> bool:
        try:
            os.kill(ppid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def watch() -> None:
        while os.getppid() == parent and driver_alive():
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="decant-parent-watch").start()
    if plan is not None:
        start_process_worker(plan, graph)


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int = 1, max_retries: int = 3, packages: tuple[str, ...] | list[str] = ()) -> None:
        """`packages`: those of the job's operators, which a forkserver (if one is needed) imports."""
        self.workers = max(1, workers)
        self.max_retries = max_retries
        self._pool: ProcessPoolExecutor | None = None
        self._plan: JobPlan | None = None
        self._inline: Worker | None = None
        self._graph: Graph | None = None
        self._packages = tuple(packages)
        if self.workers > 1:
            prestart_forkserver(self._packages)  # imports while the driver plans (no-op when forking)

    # -- pool management
    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = pool_context(self._packages or (self._plan.packages if self._plan else ()))
            forked = ctx.get_start_method() == "fork"
            graph = self._graph if forked and self._shareable(self._graph) else None
            if graph is not None:
                self._preload(graph)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=_start_pool_process,
                initargs=(os.getpid(), self._plan, graph, None if forked else worker_env()))
        return self._pool

    @staticmethod
    def _shareable(graph: Graph | None) -> bool:
        """May forked workers take the driver's graph? Not once the driver has set an operator up
        other than by `preload` (a reduce may have: its state, e.g. a helper process, is the
        driver's own)."""
        return graph is not None and not any(getattr(op, "_ready", False) and not op.preload_before_fork
                                             for op in graph.operators)

    @staticmethod
    def _preload(graph: Graph) -> None:
        """Models loaded once in the driver, shared copy-on-write by the workers it forks. An
        operator whose preload fails is left to each worker's setup, which reports the error at
        its place (the unit it was running)."""
        for op in graph.operators:
            if op.preload_before_fork:
                try:
                    op.preload()
                except Exception:  # noqa: BLE001 - the worker raises it again, with its context
                    pass

    def _reset_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- scheduling
    def parallel(self, fn: Callable, items: list) -> list:
        if self.workers == 1 or len(items) <= 1:
            return [fn(i) for i in items]
        for attempt in range(self.max_retries + 1):
            try:
                return list(self._get_pool().map(fn, items))
            except BrokenProcessPool:
                self._reset_pool()
                if attempt == self.max_retries:
                    raise
        raise AssertionError("unreachable")

    def run_stage(self, plan: JobPlan, stage: int, on_done: Callable[[UnitStats], None]) -> None:
        todo = pending_shards(plan, stage)
        if self.workers == 1:
            for s in todo:
                on_done(self._inline.run_shard(stage, s))
            return
        attempts = 0
        while todo:
            pool = self._get_pool()
            futures = {pool.submit(run_shard_in_process, stage, s): s for s in todo}
            broken = False
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        on_done(f.result())
                    except BrokenProcessPool:
                        broken = True
                    except BaseException:
                        for r in remaining:  # fail now, not after every queued shard has run
                            r.cancel()
                        raise
            if not broken:
                return
            attempts += 1
            self._reset_pool()
            if attempts > self.max_retries:
                raise RuntimeError(f"stage {stage}: worker processes kept dying; gave up after {attempts} tries")
            todo = pending_shards(plan, stage)

    def run(self, plan: JobPlan, graph: Graph, on_done: Callable[[UnitStats], None] | None = None) -> None:
        on_done = on_done or (lambda rec: None)
        if any(p.startswith("memory://") for p in [plan.out, *plan.inputs]):
            self.workers = 1  # memory:// lives in one process: worker processes would not see it
        self._plan, self._graph = plan, graph
        self._inline = Worker(plan, graph) if self.workers == 1 else None
        try:
            run_stages(plan, graph, self.run_stage, self.parallel, on_done)
        finally:
            self.close()

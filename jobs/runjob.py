"""Run a job from a spec: validate, plan, execute with the chosen executor, merge stats."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.errors import JobError
from engine.finish import finish
from engine.graph import Graph
from engine.job import JobSpec, parse_job
from engine.operator import GlobalOperator
from engine.plan import JobPlan, make_plan, prepare_output
from engine.stats import UnitStats
from jobs.paths import PACKAGES, SAMPLES, working_dir_env


def default_inputs() -> list[str]:
    """The sample shards bundled in the repo (used when a job names no input)."""
    return sorted(str(p) for p in SAMPLES.iterdir() if p.is_file() and not p.name.startswith((".", "LICENSE", "README")))


def validate_job(spec: dict[str, Any] | JobSpec) -> Graph:
    """The job's graph with the bundled operators, readers and writers: a JobError names what is wrong."""
    return Graph(spec if isinstance(spec, JobSpec) else parse_job(spec), PACKAGES)


def plan_job(spec: dict[str, Any] | JobSpec, inputs: list[str] | None = None, out: str | None = None,
             graph: Graph | None = None) -> tuple[JobPlan, Graph]:
    graph = graph or validate_job(spec)  # before anything runs
    job = graph.spec
    if not inputs and not job.input.paths:
        inputs = default_inputs()
    plan = make_plan(job, inputs, out, PACKAGES)
    if plan.spec is not job:  # partitions: auto resolved: the driver runs the graph the workers build
        graph = validate_job(plan.spec)
    check_against(graph, plan)
    return plan, graph


def check_against(graph: Graph, plan: JobPlan) -> None:
    """Each global step accepts each earlier output named in `dedup.against` (its index exists and
    was built with the same parameters), before any shard is read."""
    for i, prev in enumerate(plan.spec.dedup.against):
        for op in graph.operators:
            if isinstance(op, GlobalOperator):
                try:
                    op.check_against(prev.rstrip("/"))
                except ValueError as e:
                    raise JobError(f"dedup.against[{i}]: {op.name}: {e}") from None


def make_executor(kind: str, workers: int, spec: JobSpec, address: str | None = None):
    if kind == "local":
        from engine.executors.local import LocalExecutor
        return LocalExecutor(workers=workers, max_retries=spec.executor.max_retries, packages=PACKAGES)
    if kind == "ray":
        from engine.executors.ray_executor import RayExecutor
        ex = RayExecutor(workers=workers, address=address or spec.executor.address,
                         max_retries=spec.executor.max_retries, max_in_flight=spec.executor.max_in_flight)
        ex.ship_runtime_env = working_dir_env
        return ex
    raise JobError(f"executor.kind: unknown executor {kind!r} (local or ray)")


def run_job(spec: dict[str, Any] | JobSpec, *, inputs: list[str] | None = None, out: str | None = None,
            executor: str | None = None, workers: int | None = None, address: str | None = None,
            on_done: Callable[[UnitStats], None] | None = None, on_plan: Callable | None = None,
            keep_work: bool = False) -> dict[str, Any]:
    """Run a job to completion (resuming into an existing output) and return its stats.json."""
    graph = validate_job(spec)
    job = graph.spec
    # the executor first: a local pool's forkserver (if it needs one) imports while the driver plans
    ex = make_executor(executor or job.executor.kind, workers or job.executor.workers, job, address)
    plan, graph = plan_job(job, inputs, out, graph)
    prepare_output(plan)
    if on_plan:
        on_plan(plan, graph)
    t0 = time.perf_counter()
    ex.run(plan, graph, on_done)
    return finish(plan, graph, time.perf_counter() - t0, keep_work=keep_work).to_dict()

"""How a job runs, independent of where: the units of work that every executor schedules.

A job is split into stages at its global operators (see engine.graph.Graph). Each stage is one
task per shard (`run_shard_stage`), then, if the stage ends in a global operator, one reduce in
the driver (`run_reduce`) that may fan out through the executor's `parallel`. Each finished unit
leaves a manifest record holding its stats, which is what resume skips on and what stats.json is
merged from. Executors differ only in where these functions run.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine import io as eio
from engine.documents import DROP_REASON, KEY, content_bytes, filter_rows, set_column
from engine.graph import Graph, JobError, JobSpec, Stage
from engine.operator import GlobalContext, Operator, Result
from engine.stats import StageStats, merge

WORK = "_work"


@dataclass
class JobPlan:
    """Everything a worker needs to run any unit of a job; small and picklable."""

    spec: JobSpec
    inputs: list[str]
    out: str
    fingerprint: str = ""
    formats: list[str] = field(default_factory=list)

    @property
    def work(self) -> str:
        return f"{self.out.rstrip('/')}/{WORK}"

    def stage_output(self, stage: int, shard: int) -> str:
        """Folder of a shard's stage output: one or more Parquet parts (a new part starts where the
        batches' schema changes, e.g. a column all-null in one batch and typed in the next)."""
        return f"{self.work}/stage-{stage}/shard-{shard:06d}"

    def global_dir(self, stage: int) -> str:
        return f"{self.work}/global-{stage}"

    def staging(self, stage: int, shard: int) -> str:
        return f"{self.work}/staging/stage-{stage}/shard-{shard:06d}"

    @staticmethod
    def unit(stage: int, shard: int | None = None) -> str:
        return f"stage-{stage}/reduce" if shard is None else f"stage-{stage}/shard-{shard:06d}"


def make_plan(spec: JobSpec, inputs: list[str] | None = None, out: str | None = None) -> JobPlan:
    paths = inputs if inputs else spec.input.paths
    if not paths:
        raise JobError("input.paths: no input given (job file or -i)")
    try:
        files = eio.expand_inputs(paths)
    except FileNotFoundError as e:
        raise JobError(f"input.paths: {e.args[0] if e.args else e}") from None
    out = (out or spec.output.path).rstrip("/")
    content = spec.model_dump(exclude={"executor"})
    content["input"]["paths"] = files
    content["output"].pop("path", None)
    fp = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return JobPlan(spec=spec, inputs=files, out=out, fingerprint=fp)


def prepare_output(plan: JobPlan) -> None:
    """Create OUT, or check that an existing OUT holds this same job (resume), never another."""
    marker = f"{plan.work}/job.json"
    if eio.exists(marker):
        prev = eio.read_json(marker)
        if prev.get("fingerprint") != plan.fingerprint:
            raise JobError(
                f"output {plan.out} holds another job (different inputs or configuration); "
                "choose a new output folder or delete it")
        return
    eio.write_json_atomic({"fingerprint": plan.fingerprint, "inputs": plan.inputs,
                           "job": plan.spec.model_dump()}, marker)


# ---------------------------------------------------------------- worker side

_GRAPHS: dict[str, Graph] = {}


def worker_graph(plan: JobPlan) -> Graph:
    """The job's operators in this worker process, built and set up once and then reused."""
    g = _GRAPHS.get(plan.fingerprint)
    if g is None:
        g = Graph(plan.spec)
        _GRAPHS.clear()
        _GRAPHS[plan.fingerprint] = g
    return g


def _batches_from_reader(plan: JobPlan, shard: int, stats: StageStats) -> Iterator[pa.RecordBatch]:
    from operators.readers import detect_format, open_reader

    path = plan.inputs[shard]
    fmt = plan.spec.input.format
    if fmt == "auto":
        fmt = detect_format(path)
    reader = open_reader(path, fmt, **plan.spec.input.options)
    ordinal = 0
    base = np.uint64(shard) << np.uint64(32)
    it = iter(reader.read(path, plan.spec.executor.batch_size))
    try:
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            batch = next(it, None)
            stats.op("reader")["seconds"] += time.perf_counter() - t0
            _add_cpu(stats, "reader", c0)
            if batch is None:
                break
            n = batch.num_rows
            keys = base + np.arange(ordinal, ordinal + n, dtype=np.uint64)
            ordinal += n
            stats.reader["documents"] += n
            yield set_column(batch, KEY, pa.array(keys, pa.uint64()))
    except Exception as e:  # noqa: BLE001 - a reader bug must not lose the other shards
        reader.errors.append(f"reader failed: {type(e).__name__}: {e}")
    finally:
        name = path.rsplit("/", 1)[-1]
        for group, counts in reader.stats.items():
            if isinstance(counts, dict):
                dst = stats.reader.setdefault(group, {})
                for k, v in counts.items():
                    dst[k] = dst.get(k, 0) + v
        stats.reader["errors"].extend(f"{name}: {e}" for e in reader.errors)
    io_errors = eio.take_io_errors()
    if io_errors:  # the storage failed, not the data: this attempt's output is thrown away
        raise eio.TransientIOError("; ".join(io_errors[:3]))


def _route(op_name: str, res: Result, rejects, stats: StageStats, seconds: float,
           docs_in: int, bytes_in: int = 0) -> pa.RecordBatch:
    batch = res.batch
    if batch.num_rows != docs_in:
        # documents leave only through a keep mask, so that each one is counted with a reason
        raise RuntimeError(f"operator {op_name!r} returned {batch.num_rows} rows for {docs_in}: "
                           "drop rows with Result(keep=..., reasons=...), never by filtering the batch")
    if res.keep is None or res.keep.all():
        stats.record(op_name, docs_in, batch.num_rows, {}, seconds, bytes_in)
        return batch
    keep = res.keep
    reasons = np.asarray(res.reasons, dtype=object)[~keep]
    reasons = np.where(pd_isnull(reasons), "dropped", reasons)
    dropped_batch = filter_rows(batch, ~keep)
    rejects.write(op_name, dropped_batch, reasons)
    uniq, counts = np.unique(reasons.astype(str), return_counts=True)
    stats.record(op_name, docs_in, int(keep.sum()), dict(zip(uniq.tolist(), counts.tolist())), seconds, bytes_in)
    return filter_rows(batch, keep)


def pd_isnull(a: np.ndarray) -> np.ndarray:
    return np.array([x is None or x == "" for x in a], dtype=bool)


def _run_op(op: Operator, batch: pa.RecordBatch, rejects, stats: StageStats) -> pa.RecordBatch:
    if batch.num_rows == 0:
        return batch
    nbytes = content_bytes(batch)
    t0, c0 = time.perf_counter(), time.process_time()
    res = op.process(batch)
    _add_cpu(stats, op.name, c0)
    return _route(op.name, res, rejects, stats, time.perf_counter() - t0, batch.num_rows, nbytes)


def _add_cpu(stats: StageStats, name: str, c0: float) -> None:
    """CPU seconds (user + system, this process) beside the wall-clock `seconds`: per-core rates that
    stay true when the machine is shared."""
    s = stats.op(name)
    s["cpu_seconds"] = s.get("cpu_seconds", 0.0) + (time.process_time() - c0)


def _reader_drops(batch: pa.RecordBatch, rejects, stats: StageStats) -> pa.RecordBatch:
    n = batch.num_rows
    if DROP_REASON in batch.schema.names:
        reasons = batch.column(DROP_REASON).to_numpy(zero_copy_only=False)
        keep = np.array([r is None for r in reasons], dtype=bool)
        batch = batch.drop_columns([DROP_REASON])
        res = Result(batch, keep, reasons)
    else:
        res = Result(batch)
    return _route("reader", res, rejects, stats, 0.0, n, content_bytes(batch))


class _MapWriter:
    """Writes a global operator's map output, one Parquet file per partition for this shard."""

    def __init__(self, staging: str, nparts: int) -> None:
        self.staging, self.nparts = staging, nparts
        self.writers: dict[int, tuple[Any, Any]] = {}
        self.files: dict[int, str] = {}

    def write(self, table: pa.Table | None) -> None:
        if table is None or table.num_rows == 0:
            return
        part = table.column("_partition").to_numpy()
        order = np.argsort(part, kind="stable")
        part_sorted = part[order]
        table = table.take(pa.array(order)).drop_columns(["_partition"])
        bounds = np.flatnonzero(np.diff(part_sorted)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(part_sorted)]])
        for s, e in zip(starts, ends):
            p = int(part_sorted[s])
            if not 0 <= p < self.nparts:
                raise ValueError(f"map emitted partition {p} outside [0, {self.nparts})")
            sub = table.slice(s, e - s)
            if p not in self.writers:
                path = f"{self.staging}/map/part-{p:05d}.parquet"
                eio.makedirs(path.rsplit("/", 1)[0])
                fs, pp = eio.fs_and_path(path)
                fh = fs.open(pp, "wb")
                self.writers[p] = (fh, pq.ParquetWriter(fh, sub.schema, compression="zstd"))
                self.files[p] = path
            self.writers[p][1].write_table(sub.cast(self.writers[p][1].schema))

    def close(self) -> dict[int, str]:
        for fh, w in self.writers.values():
            w.close()
            fh.close()
        return self.files


def run_shard_stage(plan: JobPlan, stage_index: int, shard: int) -> dict[str, Any]:
    """Run one shard through one stage; idempotent. Returns the unit's stats record.

    A storage failure while reading (not damaged data) redoes the shard with backoff, up to the
    job's max_retries; after that the job fails naming the shard, which stays unfinished in the
    manifest so that a re-run redoes it. It is never recorded as a shorter shard."""
    retries = plan.spec.executor.max_retries
    for attempt in range(retries + 1):
        eio.take_io_errors()
        try:
            return _run_shard_stage_once(plan, stage_index, shard)
        except Exception as e:
            # transient when the storage failed: signalled by the reader, or any error (format
            # sniffing, opening) raised while a read of this shard's input had just failed
            if not eio.take_io_errors() and not isinstance(e, eio.TransientIOError):
                raise
            if attempt == retries:
                raise RuntimeError(f"shard {plan.inputs[shard]}: storage kept failing after {attempt + 1} "
                                   f"attempts; re-run the job to resume: {e}") from e
            time.sleep(min(30.0, 0.5 * 2 ** attempt))
    raise AssertionError("unreachable")


def _run_shard_stage_once(plan: JobPlan, stage_index: int, shard: int) -> dict[str, Any]:
    from operators.writers import DocumentWriter, RejectWriter, _PartitionedWriter

    manifest = eio.Manifest(plan.out)
    unit = plan.unit(stage_index, shard)
    if manifest.done(unit):
        return manifest.get(unit)
    t_start = time.perf_counter()
    graph = worker_graph(plan)
    stage: Stage = graph.stages[stage_index]
    for op in ([stage.apply_op] if stage.apply_op else []) + stage.ops + ([stage.map_op] if stage.map_op else []):
        op.ensure_setup()
    out_spec = plan.spec.output
    # a folder of this attempt's own: an earlier attempt may still be running (the pool worker of a
    # killed driver finishes its shard) and must not see its files removed or renamed by this one;
    # what killed attempts leave here goes with the whole staging folder in finish()
    staging = f"{plan.staging(stage_index, shard)}/attempt-{uuid.uuid4().hex[:12]}"
    stats = StageStats()
    rejects = RejectWriter(staging, shard, out_spec.format, out_spec.max_file_bytes, out_spec.rejects_text)
    docs = DocumentWriter(staging, shard, out_spec.format, out_spec.max_file_bytes) if stage.is_last else None
    mapper = _MapWriter(staging, stage.map_op.num_partitions()) if stage.map_op else None
    carry = _PartitionedWriter(staging, shard, "parquet", out_spec.max_file_bytes) if stage.map_op else None
    apply_table = None
    if stage.apply_op is not None:
        ap = f"{plan.global_dir(stage_index - 1)}/apply/shard-{shard:06d}.parquet"
        apply_table = eio.read_parquet(ap) if eio.exists(ap) else None

    if stage_index == 0:
        source = _batches_from_reader(plan, shard, stats)
    else:
        prev = plan.stage_output(stage_index - 1, shard)
        source = (b for f in eio.listdir_files(prev, ".parquet")
                  for b in eio.iter_parquet_batches(f, plan.spec.executor.batch_size))
    for batch in source:
        if stage_index == 0:
            batch = _reader_drops(batch, rejects, stats)
        if stage.apply_op is not None and batch.num_rows:
            nbytes = content_bytes(batch)
            t0 = time.perf_counter()
            res = stage.apply_op.apply(batch, apply_table)
            batch = _route(stage.apply_op.name, res, rejects, stats, time.perf_counter() - t0, batch.num_rows,
                           nbytes)
        for op in stage.ops:
            batch = _run_op(op, batch, rejects, stats)
        if batch.num_rows == 0:
            continue
        if stage.map_op is not None:
            t0, c0 = time.perf_counter(), time.process_time()
            mapper.write(stage.map_op.map(batch))
            stats.op(stage.map_op.name)["seconds"] += time.perf_counter() - t0
            _add_cpu(stats, stage.map_op.name, c0)
            carry._write("carry", batch)
        else:
            docs.write(batch)
            stats.written += batch.num_rows
    # commit: everything renamed into place, then the manifest record
    if carry is not None:
        for f in carry.close():
            eio.rename(f, f"{plan.stage_output(stage_index, shard)}/{f.rsplit('/', 1)[-1]}")
    if mapper is not None:
        for p, f in mapper.close().items():
            eio.rename(f, f"{plan.global_dir(stage_index)}/map/part-{p:05d}/shard-{shard:06d}.parquet")
    staged = rejects.close() + (docs.close() if docs else [])
    for f in staged:
        rel = f[len(staging) + 1:]
        eio.rename(f, f"{plan.out}/{rel}")
    eio.remove(staging)
    record = stats.to_dict()
    record["unit"] = unit
    record["shard"] = plan.inputs[shard]
    record["wall_seconds"] = round(time.perf_counter() - t_start, 4)
    record["worker"] = worker_memory()
    if stage_index > 0:
        record["reader"] = {"records": {}, "skipped": {}, "errors": [], "documents": 0}
    manifest.mark(unit, record)
    return record


def run_reduce(plan: JobPlan, stage_index: int, parallel: Callable[[Callable, list], list]) -> dict[str, Any]:
    """The barrier of a stage that ends in a global operator: run its reduce once."""
    manifest = eio.Manifest(plan.out)
    unit = plan.unit(stage_index)
    if manifest.done(unit):
        return manifest.get(unit)
    graph = worker_graph(plan)
    op = graph.stages[stage_index].map_op
    op.ensure_setup()
    gdir = plan.global_dir(stage_index)
    eio.remove(f"{gdir}/apply")
    ctx = GlobalContext(workdir=gdir, num_shards=len(plan.inputs), num_partitions=op.num_partitions(),
                        parallel=parallel, shard_names=plan.inputs, output_dir=plan.out)
    t0 = time.perf_counter()
    result = op.reduce(ctx) or {}
    record = {"unit": unit, "operators": {op.name: {"docs_in": 0, "docs_out": 0, "dropped": {},
                                                    "seconds": time.perf_counter() - t0, "bytes_in": 0}},
              "global": {op.name: result}, "worker": worker_memory("driver")}
    manifest.mark(unit, record)
    return record


def _vm_hwm_kb() -> int:
    """Peak RSS of this process's own address space (Linux VmHWM, KiB); 0 where unavailable.

    Preferred to ru_maxrss, which Linux carries over from the parent's memory across fork/exec, so a
    worker spawned by a large driver would report the driver's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def worker_memory(role: str = "worker") -> dict[str, Any]:
    """The process's peak resident memory so far (the high-water mark of this worker) and CPU time."""
    import os
    import socket
    try:
        import resource
        ru = resource.getrusage(resource.RUSAGE_SELF)
        peak_kb, cpu = ru.ru_maxrss, ru.ru_utime + ru.ru_stime  # ru_maxrss: KiB on Linux
    except (ImportError, OSError):
        peak_kb, cpu = 0, 0.0
    peak_kb = _vm_hwm_kb() or peak_kb
    return {"pid": os.getpid(), "host": socket.gethostname(), "role": role, "max_rss_mb": round(peak_kb / 1024, 1),
            "cpu_seconds": round(cpu, 3)}


def peak_rss(units: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak RSS per worker process (MB) over a job's units, the largest of them, and the CPU seconds
    the worker processes used (user + system, cumulative per process: the last unit's value counts)."""
    per: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for u in units:
        w = (u or {}).get("worker")
        if w and w.get("max_rss_mb"):
            key = f"{w.get('role', 'worker')}:{w.get('host', '')}:{w.get('pid')}"
            per[key] = max(per.get(key, 0.0), float(w["max_rss_mb"]))
            cpu[key] = max(cpu.get(key, 0.0), float(w.get("cpu_seconds") or 0.0))
    workers = {k: v for k, v in per.items() if not k.startswith("driver:")}
    return {"peak_rss_mb": max(workers.values()) if workers else None, "rss_mb_per_process": per,
            "worker_cpu_seconds": round(sum(v for k, v in cpu.items() if not k.startswith("driver:")), 3)}


def finish(plan: JobPlan, graph: Graph, wall_seconds: float, keep_work: bool = False) -> dict[str, Any]:
    """Merge every unit's stats into OUT/stats.json and drop intermediate data."""
    manifest = eio.Manifest(plan.out)
    units = [manifest.get(u) for u in manifest.units()]
    stats = merge(units, graph.operator_names)
    stats["job"] = {"name": plan.spec.name, "inputs": len(plan.inputs), "fingerprint": plan.fingerprint,
                    "wall_seconds": round(wall_seconds, 3), "stages": [repr(s) for s in graph.stages]}
    stats["job"].update(peak_rss(units))
    eio.write_json_atomic(stats, f"{plan.out}/stats.json")
    if not keep_work:
        for s in graph.stages:
            eio.remove(f"{plan.work}/stage-{s.index}")
            eio.remove(plan.global_dir(s.index))  # map output, apply tables, the operators' own files
        eio.remove(f"{plan.work}/staging")
    return stats


def run_stages(plan: JobPlan, graph: Graph, run_stage: Callable[[JobPlan, int, Callable], None],
               parallel: Callable[[Callable, list], list], on_done: Callable[[dict[str, Any]], None]) -> None:
    """The order every executor follows: each stage's shards, then its barrier (reduce) if any."""
    for stage in graph.stages:
        run_stage(plan, stage.index, on_done)
        missing = pending_shards(plan, stage.index)
        if missing:  # a worker wrote where the driver cannot see (e.g. memory:// is per process)
            raise RuntimeError(f"stage {stage.index}: shard(s) {missing[:5]} ran but left no record in "
                               f"{plan.out}/{WORK}/manifest; the output must be storage every worker shares")
        if stage.map_op is not None:
            run_reduce(plan, stage.index, parallel)


def pending_shards(plan: JobPlan, stage_index: int) -> list[int]:
    manifest = eio.Manifest(plan.out)
    return [s for s in range(len(plan.inputs)) if not manifest.done(plan.unit(stage_index, s))]

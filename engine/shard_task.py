"""One unit through one stage: the unit of work every executor schedules.

A unit is an input file or one range of a big file (engine.splitting), named by its index in
`plan.units`. Read (the unit's rows in stage 0, its previous stage's output after that), apply the previous
global operator's decision, run the fused per-document operators batch by batch, then either write
the documents (last stage) or emit the global operator's map rows and carry the batch to the next
stage. Everything goes to a staging folder of this attempt, is renamed into place, and only then
is the manifest record written: a unit is either done (and skipped on resume) or redone whole.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from engine import io as eio
from engine import registry
from engine.carry import carry_format, iter_carry
from engine.documents import KEY, TEXT, set_column
from engine.errors import StorageError
from engine.graph import Graph, Stage
from engine.metrics import worker_memory
from engine.output import DocumentWriter, FolderWriter, RejectWriter
from engine.plan import JobPlan
from engine.reader import open_reader
from engine.routing import READER, Timer, route_reader_drops, run_apply, run_operator
from engine.shuffle import MapWriter
from engine.splitting import MAX_ORDINAL
from engine.stats import UnitStats


def run_shard_stage(plan: JobPlan, graph: Graph, stage_index: int, shard: int) -> UnitStats:
    """Run one unit (`shard`: its index in plan.units) through one stage; idempotent. Returns the
    unit's stats.

    A storage failure (not damaged data) redoes the shard with backoff, up to the job's
    max_retries; after that the job fails naming the shard, which stays unfinished in the manifest
    so that a re-run redoes it. It is never recorded as a shorter shard."""
    retries = plan.spec.executor.max_retries
    for attempt in range(retries + 1):
        try:
            return _run_once(plan, graph, stage_index, shard)
        except StorageError as e:
            if attempt == retries:
                raise RuntimeError(f"shard {unit_name(plan, shard)}: storage kept failing after {attempt + 1} "
                                   f"attempts; re-run the job to resume: {e}") from e
            time.sleep(min(30.0, 0.5 * 2 ** attempt))
    raise AssertionError("unreachable")


def unit_name(plan: JobPlan, shard: int) -> str:
    """The input file of a unit, with its range when it is one (for messages)."""
    unit = plan.units[shard]
    path = plan.inputs[unit.file]
    return path if unit.part is None else f"{path} (range {unit.index}: from {unit.part.start})"


def read_shard(plan: JobPlan, shard: int, stats: UnitStats) -> Iterator[pa.RecordBatch]:
    """The unit's documents as batches, each row given its global `_key` (file << 32 | ordinal,
    the ordinal counted from the file's start whatever range the unit is). What belongs to the
    file rather than to a range (its format, that it was empty) only its first unit counts."""
    unit = plan.units[shard]
    path = plan.inputs[unit.file]
    name = path.rsplit("/", 1)[-1]
    try:
        reader = open_reader(path, plan.spec.input.format, **plan.spec.input.options)
    except OSError as e:  # gone or unreadable since discovery (a storage failure is retried)
        if isinstance(e, StorageError):
            raise
        stats.reader.errors.append(f"{name}: cannot open: {type(e).__name__}: {e}")
        return
    fmt = reader.name
    first = ordinal = unit.part.first_ordinal if unit.part is not None else 0
    base = np.uint64(unit.file) << np.uint64(32)
    timer = Timer(stats, READER)
    batch_size = plan.spec.executor.batch_size
    it = iter(reader.read(path, batch_size) if unit.part is None else reader.read(path, batch_size, part=unit.part))
    try:
        while True:
            with timer:
                batch = next(it, None)
            if batch is None:
                break
            n = batch.num_rows
            if ordinal + n > MAX_ORDINAL:
                raise ValueError(f"more than {MAX_ORDINAL} rows in one file: keys would collide")
            keys = base + np.arange(ordinal, ordinal + n, dtype=np.uint64)
            ordinal += n
            stats.reader.documents += n
            yield set_column(batch, KEY, pa.array(keys, pa.uint64()))
    except StorageError:
        raise
    except Exception as e:  # noqa: BLE001 - a reader bug must not lose the other shards
        reader.errors.append(f"reader failed: {type(e).__name__}: {e}")
        stats.reader.failed_shards.append(name)
    finally:
        for group, counts in reader.stats.items():
            if isinstance(counts, dict):
                dst = stats.reader.groups.setdefault(group, {})
                for k, v in counts.items():
                    dst[k] = dst.get(k, 0) + v
        stats.reader.errors.extend(f"{name}: {e}" for e in reader.errors)
    if not unit.first_of_file:
        return
    formats = stats.reader.groups.setdefault("formats", {})
    formats[fmt] = formats.get(fmt, 0) + 1
    if ordinal == first == 0 and not reader.errors and not any(reader.stats.get("records", {}).values()):
        stats.reader.empty_shards.append(name)


def _reader_content(plan: JobPlan) -> tuple[str, ...]:
    fmt = plan.spec.input.format
    readers = registry.READERS.values() if fmt == "auto" else [registry.READERS[fmt]]
    return tuple(sorted({r.content_column for r in readers} | {TEXT}))


def _run_once(plan: JobPlan, graph: Graph, stage_index: int, shard: int) -> UnitStats:
    layout = plan.work
    manifest = eio.Manifest(layout.manifest)
    work = plan.units[shard]
    unit = layout.unit(stage_index, work)
    if manifest.done(unit):
        return UnitStats.from_dict(manifest.get(unit))
    t_start = time.perf_counter()
    stage: Stage = graph.stages[stage_index]
    for op in stage.operators():
        op.ensure_setup()
    out = plan.spec.output
    staging = layout.staging(stage_index, work, uuid.uuid4().hex[:12])
    stats = UnitStats(unit=unit, shard=plan.inputs[work.file])
    name = work.label if work.part is not None else work.file  # output files: part-<label>-<n>
    rejects = RejectWriter(staging, name, out.format, out.max_file_bytes, out.rejects_text)
    docs = (DocumentWriter(staging, name, out.format, out.max_file_bytes, out.partition_by,
                           graph.transient_columns()) if stage.is_last else None)
    mappers = {op.name: MapWriter(f"{staging}/map-{op.name}", op.num_partitions()) for op in stage.map_ops}
    carry = FolderWriter(staging, name, carry_format(staging), out.max_file_bytes) if stage.map_ops else None
    carry_drops = graph.carry_drops(stage_index)
    apply_tables = _apply_tables(layout, stage, stage_index, work.file)

    if stage_index == 0:
        content = _reader_content(plan)
        source = (route_reader_drops(b, content, rejects, stats) for b in read_shard(plan, shard, stats))
    else:
        source = iter_carry(layout.stage_output(stage_index - 1, work), plan.spec.executor.batch_size)
    for batch in source:
        for op in stage.apply_ops:
            batch = run_apply(op, batch, apply_tables[op.name], rejects, stats)
        for op in stage.ops:
            batch = run_operator(op, batch, rejects, stats)
        if batch.num_rows == 0:
            continue
        if stage.map_ops:
            for op in stage.map_ops:
                with Timer(stats, op.name):
                    mappers[op.name].write(op.map(batch))
            drops = [c for c in carry_drops if c in batch.schema.names]
            carry.write_to("carry", batch.drop_columns(drops) if drops else batch)
        else:
            docs.write(batch)
            stats.written += batch.num_rows
    stats.objects = _commit(plan, stage_index, shard, staging, rejects, docs, mappers, carry)
    stats.objects_written = sum(stats.objects.values())
    stats.wall_seconds = time.perf_counter() - t_start
    stats.worker = worker_memory()
    manifest.mark(unit, stats.to_dict())
    return stats


#: The apply tables this process read last, by path: (version, table). Every range of a file
#: reads its file's table, so a worker that runs several ranges of one file reads it once; a
#: table rewritten since (a new version) is read again. Only the current unit's stay.
_APPLY_CACHE: dict[str, tuple[tuple, pa.Table]] = {}


def _apply_table(gdir, shard: int) -> pa.Table | None:
    """A shard's decisions from a barrier: its own table, else the one for every shard, else None
    (the reduce had nothing for this shard)."""
    for path in (gdir.apply_file(shard), gdir.apply_all_file):
        version = eio.version(path)
        if version is None:
            continue
        hit = _APPLY_CACHE.get(path)
        if hit is not None and hit[0] == version:
            return hit[1]
        table = eio.read_parquet(path)
        _APPLY_CACHE[path] = (version, table)
        return table
    return None


def forget_apply_tables() -> None:
    """Drop the kept tables (a driver that ran a stage's units in-process, once the stage is done)."""
    _APPLY_CACHE.clear()


def _apply_tables(layout, stage: Stage, stage_index: int, file: int) -> dict[str, pa.Table | None]:
    """The stage's apply operators' tables for one input file (decisions stay per file: keys >> 32)."""
    tables = {op.name: _apply_table(layout.global_dir(stage_index - 1, op.name), file) for op in stage.apply_ops}
    keep = {id(t) for t in tables.values()}
    for path in [p for p, (_, t) in _APPLY_CACHE.items() if id(t) not in keep]:
        del _APPLY_CACHE[path]
    return tables


def _commit(plan: JobPlan, stage_index: int, shard: int, staging: str, rejects: RejectWriter,
            docs: DocumentWriter | None, mappers: dict[str, MapWriter], carry: FolderWriter | None) -> dict[str, int]:
    """Everything renamed into place; the manifest record comes after. Returns how many files of
    each kind (carry, map:<operator>, documents, rejects)."""
    layout = plan.work
    n: dict[str, int] = {}
    if carry is not None:
        for staged, rel in carry.close():
            eio.rename(staged, f"{layout.stage_output(stage_index, plan.units[shard])}/{rel.rsplit('/', 1)[-1]}")
            n["carry"] = n.get("carry", 0) + 1
    for name, mapper in mappers.items():  # map output by unit index (a whole-file job: the file's)
        n[f"map:{name}"] = mapper.commit(layout.global_dir(stage_index, name), shard)
    for kind, writer in (("rejects", rejects), ("documents", docs)):
        published = writer.publish(plan.out) if writer is not None else []
        if published:
            n[kind] = len(published)
    eio.remove(staging)
    return n

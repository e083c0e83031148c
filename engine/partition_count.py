"""`partitions: auto`: a global step's shuffle partition count from the size of the job's input.

A reduce task holds one partition of a global step's map output, so with a fixed count its memory
grows with the corpus (`decant bench scale`, 16 partitions: the minhash bucket task went from 15 MB
at 200k documents to 211 MB at 2M). `auto` asks for one partition per `BYTES_PER_PARTITION` of
input instead, so a task's share stays about the same whatever the corpus size.

The count is fixed once, at plan time: `make_plan` rewrites every `auto` of the spec to the int
(`resolve_spec`), so the driver and every worker or Ray actor, which rebuild the graph from the
plan's spec, use the same one; it is part of the job's fingerprint and stored with the spec in
OUT/_work/job.json, and a resume takes it from there (`recorded_counts`), whatever the input
sizes say then. The kept documents do not depend on the count (each step's winner is the
smallest key), only the memory and the number of files of a reduce do.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import PlainValidator

from engine.job import JobSpec

AUTO = "auto"
#: Input bytes per partition that `auto` aims at. Measured on the scale corpus (Parquet of real
#: text, ~930 bytes a document): the largest reduce task (minhash buckets) holds ~1.7 KB per
#: document of its partition, about 2 bytes per input byte, so 32 MiB of input is a task of about
#: 60 MB above its process, small beside a worker's models (langid ~250 MB). Compressed WARC
#: input (~10x the text that reaches a dedup step) gets more partitions than it needs, which costs
#: only files.
BYTES_PER_PARTITION = 32 * 2**20
#: `auto` stops here (32 GiB of input): a connected-components round writes partitions² files,
#: 1M at 1024. A bigger job gives an int (`decant bench scale` prints what a snapshot needs).
MAX_AUTO_PARTITIONS = 1024
#: The largest count a job may give (the shuffle's partition column is int32; files grow as its square).
MAX_PARTITIONS = 65536
#: What an operator built outside a plan (tests, benchmarks) uses when not told.
DEFAULT_PARTITIONS = 16


def _check(value: Any) -> int | str:
    if value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARTITIONS:
        raise ValueError(f"expected 'auto' or an integer from 1 to {MAX_PARTITIONS}, got {value!r}")
    return value


#: The type of a global operator's `partitions` parameter: an int >= 1, or "auto" (resolved by the plan).
PartitionCount = Annotated[int | str, PlainValidator(_check)]


def auto_count(input_bytes: int) -> int:
    """The count `auto` means for this much input: one per BYTES_PER_PARTITION, 1 to MAX_AUTO_PARTITIONS."""
    return max(1, min(MAX_AUTO_PARTITIONS, math.ceil(max(0, input_bytes) / BYTES_PER_PARTITION)))


def auto_steps(spec: JobSpec) -> list[int]:
    """Indexes of the pipeline steps whose `partitions` is `auto`."""
    return [i for i, (_, params) in enumerate(spec.steps()) if params.get("partitions") == AUTO]


def recorded_counts(job: dict | None) -> dict[int, tuple[str, int]]:
    """Step index -> (name, partitions) of the resolved spec an output was started with (its job.json `job`)."""
    out: dict[int, tuple[str, int]] = {}
    for i, step in enumerate((job or {}).get("pipeline") or []):
        if isinstance(step, dict) and len(step) == 1:
            name, params = next(iter(step.items()))
            count = (params or {}).get("partitions")
            if isinstance(count, int) and not isinstance(count, bool):
                out[i] = (name, count)
    return out


def resolve_spec(spec: JobSpec, input_bytes: Callable[[], int],
                 recorded: dict[int, tuple[str, int]] | None = None) -> JobSpec:
    """The spec with every `partitions: auto` replaced by an int: what the output recorded for that
    step (a resume), else `auto_count(input_bytes())` (asked only when needed). No `auto`: the spec itself."""
    steps = auto_steps(spec)
    if not steps:
        return spec
    recorded = recorded or {}
    fresh: list[int] = []
    pipeline = copy.deepcopy(spec.pipeline)
    for i in steps:
        name = next(iter(pipeline[i]))
        prev = recorded.get(i)
        if prev and prev[0] == name:
            pipeline[i][name]["partitions"] = prev[1]
        else:
            fresh.append(i)
    if fresh:
        count = auto_count(input_bytes())
        for i in fresh:
            pipeline[i][next(iter(pipeline[i]))]["partitions"] = count
    return spec.model_copy(update={"pipeline": pipeline})

"""The job `decant dedup` runs: global MinHash-LSH near-duplicate removal alone,
{reader (format auto) -> minhash_dedup -> writer}, run through `jobs.runjob.run_job` by jobs/cli.py.

Inputs are JSONL(.gz) or Parquet documents with `id` and `text`; the output folder gets the usual
layout (documents/, rejects/operator=minhash_dedup/ with reason near_duplicate,
duplicates.parquet, stats.json).

The shuffle's partition count follows the input size (`auto_partitions`): every reduce phase
writes about partitions² files, which for a corpus of a few hundred MB costs far more than the
work itself, and the kept documents do not depend on it (the smallest node of a cluster wins).
"""
from __future__ import annotations

import math
from typing import Any

#: Input bytes per shuffle partition `decant dedup` aims at (a partition's reduce task holds
#: about 10 band rows per document of it: ~1M documents of 1 KB are ~0.5 GB in a task).
BYTES_PER_PARTITION = 1 << 30
MAX_AUTO_PARTITIONS = 16


def auto_partitions(inputs: list[str], bytes_per_partition: int = BYTES_PER_PARTITION) -> int:
    """Partitions for inputs of this total size: one per `bytes_per_partition`, 1 to 16 (16 when
    the inputs cannot be listed here; the job reports that itself)."""
    from engine.discovery import find_inputs
    from engine.io import fs_and_path
    try:
        total = 0
        for f in find_inputs(inputs).files:
            fs, p = fs_and_path(f)
            total += int(fs.size(p) or 0)
    except (OSError, ValueError):
        return MAX_AUTO_PARTITIONS
    return max(1, min(MAX_AUTO_PARTITIONS, math.ceil(total / bytes_per_partition)))


def dedup_job(inputs: list[str], output: str, threshold: float = 0.8, ngram: int = 5, num_perm: int = 112,
              bands: int | None = None, rows: int | None = None, workers: int | None = None,
              partitions: int | None = None, verify: bool = False, against: list[str] = ()) -> dict[str, Any]:
    """The job spec (a dict, as a job file holds it) that `decant dedup` runs; partitions None:
    from the input size (`auto_partitions`)."""
    params: dict[str, Any] = {"threshold": threshold, "ngram": ngram, "num_perm": num_perm,
                              "partitions": partitions or auto_partitions(list(inputs)), "verify": verify}
    if bands is not None or rows is not None:
        params["bands"] = bands
        params["rows"] = rows
    spec: dict[str, Any] = {
        "name": "dedup",
        "input": {"paths": list(inputs), "format": "auto"},
        "output": {"path": output, "format": "parquet"},
        "pipeline": [{"minhash_dedup": params}],
        "executor": {"kind": "local"},
    }
    if against:
        spec["dedup"] = {"against": list(against)}
    if workers:
        spec["executor"]["workers"] = workers
    return spec

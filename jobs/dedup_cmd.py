"""The job `decant dedup` runs: global MinHash-LSH near-duplicate removal alone,
{reader (format auto) -> minhash_dedup -> writer}, run through `jobs.runjob.run_job` by jobs/cli.py.

Inputs are JSONL(.gz) or Parquet documents with `id` and `text`; the output folder gets the usual
layout (documents/, rejects/operator=minhash_dedup/ with reason near_duplicate,
duplicates.parquet, stats.json).

The shuffle's partition count is `auto` unless given: the plan resolves it from the input size
(engine.partition_count, as for any job), and the kept documents do not depend on it (the
smallest node of a cluster wins).
"""
from __future__ import annotations

from typing import Any


def dedup_job(inputs: list[str], output: str, threshold: float = 0.8, ngram: int = 5, num_perm: int = 112,
              bands: int | None = None, rows: int | None = None, workers: int | None = None,
              partitions: int | None = None, verify: bool = False, against: list[str] = ()) -> dict[str, Any]:
    """The job spec (a dict, as a job file holds it) that `decant dedup` runs; partitions None:
    `auto` (from the input size, at plan time)."""
    params: dict[str, Any] = {"threshold": threshold, "ngram": ngram, "num_perm": num_perm,
                              "partitions": partitions or "auto", "verify": verify}
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

"""`decant dedup`: global MinHash-LSH near-duplicate removal alone, as a job
{reader (format auto) -> minhash_dedup -> writer} run through `jobs.runjob.run_job`.

Inputs are JSONL(.gz) or Parquet documents with `id` and `text`; the output folder gets the usual
layout (documents/, rejects/operator=minhash_dedup/ with reason near_duplicate,
duplicates.parquet, stats.json).
"""
from __future__ import annotations

from typing import Any

import typer


def dedup_job(inputs: list[str], output: str, threshold: float = 0.8, ngram: int = 5, num_perm: int = 112,
              bands: int | None = None, rows: int | None = None, workers: int | None = None,
              partitions: int = 16, verify: bool = False) -> dict[str, Any]:
    """The job spec (a dict as in design.md 3) that `decant dedup` runs."""
    params: dict[str, Any] = {"threshold": threshold, "ngram": ngram, "num_perm": num_perm,
                              "partitions": partitions, "verify": verify}
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
    if workers:
        spec["executor"]["workers"] = workers
    return spec


def _value(v: Any) -> Any:
    from typer.models import OptionInfo
    return v.default if isinstance(v, OptionInfo) else v


def dedup(
    inputs: list[str] = typer.Option(..., "-i", "--input", help="JSONL(.gz) or Parquet documents with id and text"),
    output: str = typer.Option(..., "-o", "--output"),
    threshold: float = typer.Option(0.8, "--threshold"),
    ngram: int = typer.Option(5, "--ngram"),
    num_perm: int = typer.Option(112, "--num-perm"),
    bands: int | None = typer.Option(None, "--bands"),
    rows: int | None = typer.Option(None, "--rows"),
    workers: int | None = typer.Option(None, "--workers"),
) -> dict[str, Any]:
    """Global MinHash-LSH near-duplicate removal over documents; returns the job's merged stats."""
    from jobs.runjob import run_job  # lazy: keep `decant --help` fast

    # called from Python with some arguments left out: use the typer defaults' values
    threshold, ngram, num_perm, bands, rows, workers = (
        _value(v) for v in (threshold, ngram, num_perm, bands, rows, workers))
    spec = dedup_job(inputs, output, threshold, ngram, num_perm, bands, rows, workers)
    return run_job(spec, executor="local", workers=workers)

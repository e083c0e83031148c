"""Scaling: documents/s for 1 and 2 workers, local and Ray executors, on the same input in one run.

The input is the JSONL.gz corpus of benchmarks/corpora/jsonl_corpus.py (lingua sentences in a
dozen languages, English Wikipedia paragraphs from WikiText-2, a few repeated paragraphs so that
line dedup has work). The job is the per-document part of the default pipeline on text input
plus the global line dedup: jsonl reader -> langid -> line_dedup (map,
barrier, reduce as Ray tasks, apply) -> quality -> writer. Each configuration writes a fresh
output; figures are documents read per wall second of the whole job (start-up included: what
a user waits for), and Ray's overhead as the ratio of Ray's time to the local executor's time
with the same worker count (a ratio > 1 means Ray is slower).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.corpora.cache import bytecode_env
from benchmarks.corpora.jsonl_corpus import jsonl_corpus
from operators.paths import REPO_ROOT

DESCRIPTION = "docs/s for 1 and 2 workers, local vs Ray executor, same input (Ray overhead ratio)"
QUICK = True


def scaling_job(extra: list[dict] | None = None) -> dict[str, Any]:
    """The benchmark's (and the Ray tests') job: jsonl -> langid -> line_dedup -> quality -> parquet, with the
    default job's settings where it has them (partitions: auto)."""
    steps = [{"langid": {"threshold": 0.5}}, {"line_dedup": {"partitions": "auto"}}, {"quality": {}}]  # as jobs/default.yaml
    return {"name": "scaling", "input": {"format": "jsonl"}, "output": {"format": "parquet"},
            "pipeline": steps + list(extra or []), "executor": {"batch_size": 1024}}


_CHILD = r"""
import json, sys, time
from jobs.runjob import run_job
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
stats = run_job(cfg["job"], inputs=cfg["inputs"], out=cfg["out"], executor=cfg["executor"], workers=cfg["workers"])
wall = time.perf_counter() - t0
from engine.io import Manifest
from engine.plan import WorkLayout
m = Manifest(WorkLayout(cfg["out"]).manifest)
shard_s = sum(m.get(u).get("wall_seconds", 0.0) for u in m.units() if "/shard-" in u)
print("RESULT " + json.dumps({"wall": wall, "shard_seconds": shard_s, "read": stats["total"]["documents_read"],
                              "kept": stats["total"]["documents_kept"], "ok": stats["total"]["accounting_ok"]}))
"""


def _run_config(job: dict, inputs: list[str], out: str, executor: str, workers: int) -> dict[str, Any]:
    """One configuration in a fresh Python process (no warm imports or model caches carried over;
    the Ray configurations start and stop their own local Ray instance, counted in the time)."""
    cfg = {"job": job, "inputs": inputs, "out": out, "executor": executor, "workers": workers}
    env = bytecode_env()
    env.pop("RAY_ADDRESS", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cfg)], capture_output=True, text=True,
                          cwd=str(REPO_ROOT), env=env, timeout=900, check=False)
    total = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{executor} x{workers} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(line[7:])
    res["process_wall"] = total
    return res


def run(quick: bool = True) -> dict[str, Any]:
    shards, per_shard = (4, 1000) if quick else (8, 5000)
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="decant-scaling-"))
    try:
        inputs = jsonl_corpus(tmp / "in", shards=shards, docs_per_shard=per_shard)
        job = scaling_job()
        # untimed: the bytecode cache of `bytecode_env` filled, as an installed package has it
        _run_config(job, inputs[:1], str(tmp / "out-warm"), "local", 2)
        rows = []
        results: dict[tuple[str, int], dict] = {}
        for executor in ("local", "ray"):
            for workers in (1, 2):
                r = _run_config(job, inputs, str(tmp / f"out-{executor}-{workers}"), executor, workers)
                results[(executor, workers)] = r
                rows.append({"executor": executor, "workers": workers, "documents": r["read"],
                             "kept": r["kept"], "job seconds": round(r["wall"], 2),
                             "docs/s": round(r["read"] / r["wall"], 1),
                             "shard seconds": round(r["shard_seconds"], 2),
                             "in-shard docs/s per worker": round(r["read"] / r["shard_seconds"], 1),
                             "process seconds": round(r["process_wall"], 2), "accounting ok": r["ok"]})
        figs: dict[str, Any] = {}
        for (ex, w), r in results.items():
            figs[f"{ex}_{w}w_docs_per_s"] = round(r["read"] / r["wall"], 1)
        for (ex, w), r in results.items():
            figs[f"{ex}_{w}w_in_shard_docs_per_s_per_worker"] = round(r["read"] / r["shard_seconds"], 1)
        for w in (1, 2):
            figs[f"ray_over_local_in_shard_time_ratio_{w}w"] = round(
                results[("ray", w)]["shard_seconds"] / results[("local", w)]["shard_seconds"], 3)
        for w in (1, 2):
            figs[f"ray_over_local_time_ratio_{w}w"] = round(results[("ray", w)]["wall"] / results[("local", w)]["wall"], 3)
        figs["local_speedup_2w_over_1w"] = round(results[("local", 1)]["wall"] / results[("local", 2)]["wall"], 3)
        figs["ray_speedup_2w_over_1w"] = round(results[("ray", 1)]["wall"] / results[("ray", 2)]["wall"], 3)
        same = len({(r["read"], r["kept"]) for r in results.values()}) == 1
        figs["same_counts_all_configs"] = same
        notes = [
            (f"input: {shards} JSONL.gz shards x {per_shard} docs of real text (lingua + wikitext-2), "
             f"pipeline {[next(iter(s)) for s in job['pipeline']]}; {os.cpu_count()} CPUs"),
            ("job seconds = run_job wall time including executor start-up (Ray: ray.init of a local "
             "instance and actor start); ratio = Ray time / local time at the same worker count."),
            ("in-shard = documents / sum of the shards' own wall seconds (run_shard_stage inside the "
             "worker, all stages): the steady-state cost per document without start-up and scheduling; "
             "the in-shard ratio isolates what running inside a Ray actor costs."),
            (f"load average (1 min) before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} CPUs: other processes on the machine share the cores, compare the ratios "
             "within this run only."),
            ("On a 2-core machine 2 workers cannot reach 2x: the driver, Ray's own processes and the "
             "line-dedup reduce share the same cores."),
        ]
        return {"figures": figs, "rows": rows, "inputs": {"shards": shards, "docs_per_shard": per_shard,
                                                           "pipeline": job["pipeline"]}, "notes": notes}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

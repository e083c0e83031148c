"""Scale: a crawl-sized corpus through langid -> line_dedup -> quality -> minhash_dedup on this
machine (local executor, 2 workers), the same job on a tenth of it in the same run, and what a
3-billion-document snapshot would cost on a Ray cluster, from the figures measured here.

    decant bench scale [--docs 2000000] [--small 200000] [--workers 2]

Corpus (benchmarks/corpora/scale_corpus.py): real sentences of 80+ languages, with injected
near-duplicates of known edit rates and exact Jaccard, and repeated lines, all recorded.

Each job runs in a fresh Python process (its driver's peak RSS is its own), with the work folder
kept; after it, that process replays every global operator's reduce on the kept map output with a
pool in which each task resets its process's peak-RSS mark (/proc/self/clear_refs) and reports the
peak it reached: the memory of one reduce task = one partition, and its CPU time.

Near-duplicate precision/recall (documents): the universe is the documents that reached
minhash_dedup (not dropped by langid, line_dedup or quality). A document is a true positive
target when it is an injected copy, its source also reached minhash_dedup, and the exact Jaccard of
the two texts as minhash sees them is >= the threshold. Predicted = removed by minhash_dedup
(OUT/duplicates.parquet). TP = predicted and target; FP = predicted, not target (originals, or
copies under the threshold or whose source is gone); FN = target, kept. TP+FP = removed,
TP+FN = targets, TP+FP+FN+TN = documents that reached minhash_dedup.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.partition_count import auto_count
from operators.paths import REPO_ROOT

DESCRIPTION = ("2M documents (real text, injected near-duplicates and repeated lines) through langid, line_dedup, "
               "quality, minhash_dedup on 2 workers vs the same job on 200k: docs/s per core, peak RSS ratio, "
               "near-duplicate P/R, extrapolation to 3e9 documents")
QUICK = False

DOCS, SMALL_DOCS, WORKERS = 2_000_000, 200_000, 2
SNAPSHOT_DOCS = 3.0e9
THRESHOLD = 0.8
#: Memory a reduce task may use on the cluster (a Ray worker of 1 CPU and 4 GiB).
TASK_BUDGET_MB = 4096
BEFORE_MINHASH = ("langid", "unique_ids", "line_dedup", "quality")
#: The two runs fit a reduce task's memory per document of its partition only when the large
#: run's partitions hold at least this many times the small run's documents.
FIT_MIN_SPREAD = 1.5


def scale_job(workers: int = WORKERS) -> dict[str, Any]:
    """langid -> line_dedup -> quality -> minhash_dedup with the default job's settings (partitions
    `auto`: from the input size, so a reduce task holds about as many documents in both runs)."""
    return {"name": "scale", "input": {"format": "parquet"},
            "output": {"format": "parquet", "partition_by": ["language"]},
            "pipeline": [{"langid": {"threshold": 0.5, "drop_unknown": True}},
                         {"line_dedup": {"partitions": "auto"}},
                         {"quality": {"rules": ["gopher", "c4", "fineweb"], "c4": {"filter_no_terminal_punct": False}}},
                         {"minhash_dedup": {"threshold": THRESHOLD, "ngram": 5, "num_perm": 112, "partitions": "auto"}}],
            "executor": {"kind": "local", "workers": workers, "batch_size": 256}}


# ------------------------------------------------------------------ inside the job's process

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak-RSS mark (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def profiled_call(args: tuple) -> tuple[Any, dict]:
    """Run fn(item) in a pool process; its result and the task's base RSS, peak RSS, CPU and wall."""
    fn, item = args
    reset = _reset_peak()
    base = _status_kb("VmRSS")
    c0, t0 = time.process_time(), time.perf_counter()
    res = fn(item)
    rec = {"fn": fn.__name__, "base_mb": base / 1024, "peak_mb": _status_kb("VmHWM") / 1024 if reset else None,
           "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}
    return res, rec


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _hardlink_copy(src: Path, dst: Path, skip: tuple[str, ...] = ("apply",)) -> None:
    for f in src.rglob("*"):
        rel = f.relative_to(src)
        if rel.parts and rel.parts[0] in skip or not f.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, dst / rel)
        except OSError:
            shutil.copy2(f, dst / rel)


def replay_reduces(plan, graph, workers: int, scratch: Path) -> dict[str, Any]:
    """Every global operator's reduce again, on copies of its map output, with per-task peaks."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from engine.reduce import GlobalContext
    out: dict[str, Any] = {}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(profiled_call, [(len, [])] * workers))  # start the processes before measuring
        for stage in graph.stages:
            for op in stage.map_ops:
                gdir = Path(plan.work.global_dir(stage.index, op.name).root)
                work = scratch / gdir.name
                _hardlink_copy(gdir, work)
                tasks: list[dict] = []

                def parallel(fn, items, _tasks=tasks):
                    res = list(pool.map(profiled_call, [(fn, i) for i in items]))
                    _tasks.extend(r for _, r in res)
                    return [r for r, _ in res]

                op.ensure_setup()
                ctx = GlobalContext(str(work), len(plan.inputs), op.num_partitions(), parallel, plan.inputs,
                                    str(scratch / f"out-{gdir.name}"), plan.spec.dedup.against)
                reset = _reset_peak()
                base = _status_kb("VmRSS")
                c0, t0 = time.process_time(), time.perf_counter()
                op.reduce(ctx)
                out[op.name] = {"partitions": op.num_partitions(), "tasks": tasks,
                                "driver_cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
                                "driver_base_mb": base / 1024,
                                "driver_peak_mb": _status_kb("VmHWM") / 1024 if reset else None}
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(scratch / f"out-{gdir.name}", ignore_errors=True)
    return out


def job_process(cfg: dict) -> dict[str, Any]:
    """The body of one measured job (run in its own process by `_run_job`)."""
    import resource

    from jobs.runjob import run_job
    seen: dict[str, Any] = {}

    def on_plan(plan, graph):
        seen["plan"], seen["graph"] = plan, graph

    t0 = time.perf_counter()
    stats = run_job(cfg["job"], inputs=cfg["inputs"], out=cfg["out"], executor="local", workers=cfg["workers"],
                    on_plan=on_plan, keep_work=True)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    driver_cpu = me.ru_utime + me.ru_stime
    workers_cpu = kids.ru_utime + kids.ru_stime
    driver_peak = _status_kb("VmHWM") / 1024
    work = Path(cfg["out"]) / "_work"
    sizes = {p.name: _tree_bytes(p) for p in sorted(work.iterdir()) if p.is_dir()}
    map_sizes = {p.name: _tree_bytes(p / "map") for p in sorted(work.glob("global-*"))}
    replay = replay_reduces(seen["plan"], seen["graph"], cfg["workers"], Path(cfg["out"]) / "_replay")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(Path(cfg["out"]) / "_replay", ignore_errors=True)
    return {"stats": stats, "wall_s": wall, "driver_cpu_s": driver_cpu, "workers_cpu_s": workers_cpu,
            "driver_peak_mb": driver_peak, "work_bytes": sizes, "map_bytes": map_sizes, "replay": replay}


_CHILD = r"""
import json, sys
from benchmarks.scale import job_process
if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    res = job_process(cfg)
    with open(cfg["result"], "w") as f:
        json.dump(res, f, default=str)
"""


def _run_job(inputs: list[str], out: str, workers: int) -> dict[str, Any]:
    result = f"{out}.result.json"
    cfg = {"job": scale_job(workers), "inputs": inputs, "out": out, "workers": workers, "result": result}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cfg)], capture_output=True, text=True,
                          cwd=str(REPO_ROOT), env=env, check=False)
    if proc.returncode != 0 or not os.path.exists(result):
        raise RuntimeError(f"scale job on {len(inputs)} shards failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    with open(result) as f:
        return json.load(f)


# ------------------------------------------------------------------ near-duplicate truth

def _ids(paths: list[Path]) -> np.ndarray:
    """Document numbers (ids d000000123 -> 123) in the `id` column of Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    parts = [pq.read_table(p, columns=["id"]).column("id") for p in paths]
    parts = [c for c in parts if len(c)]
    if not parts:
        return np.zeros(0, np.int64)
    col = pc.utf8_slice_codeunits(pa_concat(parts), 1)
    return pc.cast(col, "int64").to_numpy(zero_copy_only=False)


def pa_concat(chunks):
    import pyarrow as pa
    return pa.chunked_array([c for ch in chunks for c in ch.chunks], pa.string())


def near_duplicate_quality(out: Path, truth_dir: Path) -> dict[str, Any]:
    """Precision/recall of minhash_dedup on the injected near-duplicates (definition: module docstring)."""
    import pyarrow.compute as pc

    from benchmarks.corpora.scale_corpus import read_truth
    truth = read_truth(truth_dir)
    n = truth.num_rows
    idx = pc.cast(pc.utf8_slice_codeunits(truth.column("id"), 1), "int64").to_numpy()
    assert np.array_equal(idx, np.arange(n)), "truth rows are documents 0..N-1 in order"
    kinds = truth.column("kind").dictionary_encode().combine_chunks()
    kind = np.asarray(kinds.dictionary.to_pylist(), dtype=object)[kinds.indices.to_numpy()]
    src_col = truth.column("source_id")
    has_src = np.asarray(src_col.is_valid())
    src = np.full(n, -1, np.int64)
    src[has_src] = pc.cast(pc.utf8_slice_codeunits(src_col.filter(src_col.is_valid()), 1), "int64").to_numpy()
    jac = truth.column("jaccard").to_numpy(zero_copy_only=False)
    jac = np.where(np.isnan(jac), -1.0, jac)
    fate = np.full(n, "kept", dtype=object)
    entered = np.ones(n, bool)
    for op in BEFORE_MINHASH:
        rej = _ids(sorted((out / "rejects" / f"operator={op}").glob("*.parquet")))
        entered[rej] = False
        fate[rej] = op
    dup_file = out / "duplicates.parquet"
    removed = np.zeros(n, bool)
    kept = np.full(n, -1, np.int64)
    if dup_file.exists():
        import pyarrow.parquet as pq
        d = pq.read_table(dup_file, columns=["id", "kept_id"])
        rid = pc.cast(pc.utf8_slice_codeunits(d.column("id"), 1), "int64").to_numpy()
        kid = pc.cast(pc.utf8_slice_codeunits(d.column("kept_id"), 1), "int64").to_numpy()
        removed[rid] = True
        kept[rid] = kid
        fate[rid] = "minhash_dedup"
    copy = has_src
    src_entered = np.zeros(n, bool)
    src_entered[copy] = entered[src[copy]]
    target = copy & entered & src_entered & (jac >= THRESHOLD)
    tp = int(np.count_nonzero(removed & target))
    fp = int(np.count_nonzero(removed & ~target))
    fn = int(np.count_nonzero(target & ~removed))
    tn = int(np.count_nonzero(entered & ~target & ~removed))
    res: dict[str, Any] = {
        "documents": n, "reached_minhash": int(entered.sum()), "injected_copies": int(copy.sum()),
        "targets": int(target.sum()), "removed": int(removed.sum()), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
        "removed_not_reached": int(np.count_nonzero(removed & ~entered)),
        "tp_kept_document_is_source": (round(float(np.mean(kept[removed & target] == src[removed & target])), 4)
                                       if tp else None),
        "fp_originals": int(np.count_nonzero(removed & ~copy)),
        "fp_copies_under_threshold": int(np.count_nonzero(removed & copy & (jac < THRESHOLD))),
        "fp_copies_source_dropped": int(np.count_nonzero(removed & copy & (jac >= THRESHOLD) & ~src_entered)),
    }
    res["counts_add_up"] = (tp + fp == res["removed"] and tp + fn == res["targets"]
                            and tp + fp + fn + tn == res["reached_minhash"] and res["removed_not_reached"] == 0)
    pair = copy & entered & src_entered
    bins = {}
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 1.01)):
        m = pair & (jac >= lo) & (jac < hi)
        bins[f"J {lo:.2f}-{min(hi, 1):.2f}"] = {"pairs": int(m.sum()),
                                                 "removed_share": round(float(removed[m].mean()), 4) if m.any() else None}
    res["removed_share_by_jaccard"] = bins
    fates = {}
    for k in sorted(set(kind.tolist())):
        m = kind == k
        vals, cnt = np.unique(fate[m].astype(str), return_counts=True)
        fates[k] = dict(zip(vals.tolist(), cnt.tolist()))
    res["fate_by_kind"] = fates
    reps = truth.column("repeated_lines").to_numpy().astype(np.int64)
    past_langid = fate != "langid"
    res["repeated_line_instances_past_langid"] = int(reps[past_langid].sum())
    return res


# ------------------------------------------------------------------ figures

def _reduce_peaks(replay: dict[str, Any]) -> dict[str, Any]:
    """Per global operator: its largest task (peak above the process's base RSS), CPU of all tasks."""
    out = {}
    for name, r in replay.items():
        tasks = [t for t in r["tasks"] if t.get("peak_mb") is not None]
        top = max(tasks, key=lambda t: t["peak_mb"] - t["base_mb"], default=None)
        by_fn: dict[str, float] = {}
        for t in tasks:
            by_fn[t["fn"]] = round(max(by_fn.get(t["fn"], 0.0), t["peak_mb"] - t["base_mb"]), 1)
        out[name] = {"partitions": r["partitions"], "tasks": len(r["tasks"]), "above_base_mb_by_task": by_fn,
                     "largest_task": top and top["fn"],
                     "largest_task_peak_mb": top and round(top["peak_mb"], 1),
                     "largest_task_above_base_mb": top and round(top["peak_mb"] - top["base_mb"], 1),
                     "task_base_mb": top and round(top["base_mb"], 1),
                     "tasks_cpu_s": round(sum(t["cpu_s"] for t in r["tasks"]), 3),
                     "driver_cpu_s": round(r["driver_cpu_s"], 3), "wall_s": round(r["wall_s"], 2),
                     "driver_above_base_mb": (round(r["driver_peak_mb"] - r["driver_base_mb"], 1)
                                              if r.get("driver_peak_mb") is not None else None)}
    return out


def summarize(res: dict[str, Any], workers: int) -> dict[str, Any]:
    st = res["stats"]
    docs = st["total"]["documents_read"]
    cpu = res["driver_cpu_s"] + res["workers_cpu_s"]
    per_proc = (st.get("job") or {}).get("rss_mb_per_process") or {}
    worker_peaks = [v for k, v in per_proc.items() if not k.startswith("driver:")]
    ops = {name: {"docs_in": o.get("docs_in", 0), "docs_out": o.get("docs_out", 0),
                  "cpu_s": round(float(o.get("cpu_seconds") or 0), 3), "wall_s": round(float(o.get("seconds") or 0), 3),
                  "docs_per_s_cpu": (round(o["docs_in"] / o["cpu_seconds"], 1) if o.get("cpu_seconds") else None)}
           for name, o in (st.get("operators") or {}).items()}
    return {
        "documents": docs, "kept": st["total"]["documents_kept"], "accounting_ok": st["total"]["accounting_ok"],
        "dropped_by_operator": st["total"]["dropped_by_operator"], "shards": (st.get("job") or {}).get("inputs"),
        "workers": workers, "wall_s": round(res["wall_s"], 2), "cpu_s": round(cpu, 2),
        "driver_cpu_s": round(res["driver_cpu_s"], 2),
        "docs_per_s_per_core_wall": round(docs / (res["wall_s"] * workers), 1),
        "docs_per_s_per_core_cpu": round(docs / cpu, 1) if cpu else None,
        "peak_rss_mb_worker": max(worker_peaks) if worker_peaks else None,
        "peak_rss_mb_per_worker": sorted(worker_peaks, reverse=True),
        "peak_rss_mb_driver": round(res["driver_peak_mb"], 1),
        "operators": ops, "global": st.get("global"),
        "partitions": {name: g.get("partitions") for name, g in (st.get("global") or {}).items()},
        "work_bytes_per_doc": {k: round(v / docs, 1) for k, v in res["work_bytes"].items()},
        "map_bytes_per_doc": {k: round(v / docs, 1) for k, v in res["map_bytes"].items()},
        "reduce": _reduce_peaks(res["replay"]),
    }


def extrapolate(s: dict[str, Any], small: dict[str, Any] | None, n: float = SNAPSHOT_DOCS) -> dict[str, Any]:
    """A snapshot of n documents on a Ray cluster, scaled linearly from the run `s`."""
    docs = s["documents"]
    scale = n / docs
    stages = {name: round(o["cpu_s"] * scale / 3600) for name, o in s["operators"].items()}
    reduces = {name: round((r["tasks_cpu_s"] + r["driver_cpu_s"]) * scale / 3600) for name, r in s["reduce"].items()}
    ops_cpu = sum(o["cpu_s"] for o in s["operators"].values())
    red_cpu = sum(r["tasks_cpu_s"] + r["driver_cpu_s"] for r in s["reduce"].values())
    rest = max(0.0, s["cpu_s"] - ops_cpu - red_cpu)
    shuffle = {k: round(v * n / 1e12, 2) for k, v in s["map_bytes_per_doc"].items()}
    work = {k: round(v * n / 1e12, 2) for k, v in s["work_bytes_per_doc"].items()}
    reducers = {}
    # what `partitions: auto` gives the snapshot's input (Parquet of this corpus' bytes per document)
    per_doc_bytes = (s.get("corpus") or {}).get("parquet_bytes_per_doc")
    auto_parts = auto_count(int(per_doc_bytes * n)) if per_doc_bytes else None
    for name, r in s["reduce"].items():
        if r["largest_task_above_base_mb"] is None:
            continue
        fn, big_mb, dpp = r["largest_task"], r["largest_task_above_base_mb"], docs / r["partitions"]
        fixed, per_doc_mb, fit, growth = 0.0, big_mb / dpp, "through zero", None
        sr = (small or {}).get("reduce", {}).get(name)
        if sr and sr["above_base_mb_by_task"].get(fn) is not None:
            small_mb, small_dpp = sr["above_base_mb_by_task"][fn], small["documents"] / sr["partitions"]
            growth = round(big_mb / small_mb, 2) if small_mb > 0 else None
            # memory = fixed + per document of the partition, through the two runs' points when their
            # partitions differ enough in documents (with `auto` they hold about the same: the slope
            # through two close points is noise, so the fit stays through zero, an upper bound)
            if dpp > FIT_MIN_SPREAD * small_dpp and big_mb > small_mb:
                per_doc_mb = (big_mb - small_mb) / (dpp - small_dpp)
                fixed, fit = big_mb - per_doc_mb * dpp, "two runs"
            elif dpp <= FIT_MIN_SPREAD * small_dpp:
                fit = f"through zero ({dpp:,.0f} vs {small_dpp:,.0f} documents per partition in the two runs)"
        base = r["task_base_mb"] + fixed

        def mem_mb(parts: int) -> float:
            return base + per_doc_mb * n / parts
        parts = r["partitions"]
        while mem_mb(parts) > TASK_BUDGET_MB and parts < 2**20:
            parts *= 2
        reducers[name] = {"largest_task": fn, "mb_per_doc_in_partition": round(per_doc_mb, 6), "fixed_mb": round(base, 1),
                          "fit": fit, "at_job_partitions": {"partitions": r["partitions"],
                                                            "largest_reducer_gb": round(mem_mb(r["partitions"]) / 1024, 1)},
                          "at_auto_partitions": auto_parts and {
                              "partitions": auto_parts, "largest_reducer_gb": round(mem_mb(auto_parts) / 1024, 1)},
                          "partitions_for_4gb_tasks": parts, "largest_reducer_gb_at_those": round(mem_mb(parts) / 1024, 2),
                          "task_growth_vs_small_run": growth, "documents_ratio_vs_small_run":
                          round(docs / small["documents"], 2) if small else None}
    return {"documents": n, "from_run_documents": docs,
            "core_hours_cpu": round(s["cpu_s"] * scale / 3600),
            "core_hours_wall": round(s["wall_s"] * s["workers"] * scale / 3600),
            "core_hours_by_stage": stages, "core_hours_by_reduce": reduces,
            "core_hours_rest": round(rest * scale / 3600),
            "shuffle_tb_map_output": shuffle, "work_tb_by_folder": work,
            "work_tb_total": round(sum(s["work_bytes_per_doc"].values()) * n / 1e12, 2),
            "largest_reducer": reducers}


def extrapolation_text(x: dict[str, Any]) -> list[str]:
    lines = [f"Extrapolation to {x['documents']:.0e} documents (one Common Crawl snapshot), linear from the "
             f"{x['from_run_documents']:,}-document run: {x['core_hours_cpu']:,} core-hours of CPU "
             f"({x['core_hours_wall']:,} at this run's wall clock x workers, which counts waiting for shared cores).",
             "  by stage (CPU in each operator, map and apply): " + ", ".join(
                 f"{k} {v:,}" for k, v in x["core_hours_by_stage"].items()),
             "  reduces (replayed tasks + driver): " + ", ".join(f"{k} {v:,}" for k, v in x["core_hours_by_reduce"].items())
             + f"; the rest (process start, stage files, writer, scheduling) {x['core_hours_rest']:,}.",
             "  shuffle storage (map output of the global steps): " + ", ".join(
                 f"{k} {v} TB" for k, v in x["shuffle_tb_map_output"].items())
             + f"; the work folder kept whole (stage-N: the documents carried between stages) "
               f"{x['work_tb_total']} TB (" + ", ".join(
                 f"{k} {v} TB" for k, v in x["work_tb_by_folder"].items()) + ").",
             ]
    for name, r in x["largest_reducer"].items():
        lines.append(f"  largest {name} reducer ({r['largest_task']}): {r['fixed_mb']:,.0f} MB + "
                     f"{r['mb_per_doc_in_partition'] * 2**20:,.0f} bytes per document of its partition (fit: {r['fit']}) "
                     f"-> {r['at_job_partitions']['largest_reducer_gb']:,} GB with the job's "
                     f"{r['at_job_partitions']['partitions']} partitions"
                     + (f", {r['at_auto_partitions']['largest_reducer_gb']:,} GB with the {r['at_auto_partitions']['partitions']:,} "
                        "that auto gives the snapshot" if r["at_auto_partitions"] else "")
                     + f"; {r['partitions_for_4gb_tasks']:,} partitions "
                     f"keep it at {r['largest_reducer_gb_at_those']} GB"
                     + (f" (the task grew {r['task_growth_vs_small_run']}x for {r['documents_ratio_vs_small_run']}x the "
                        "documents)" if r["task_growth_vs_small_run"] else ""))
    lines.append("  Assumptions: per-document CPU and bytes stay constant (sorts are n log n within a partition, "
                 "so the reduce's share grows slowly); a Ray cluster's cores run the same per-core rates; memory "
                 "per reduce task scales with documents per partition (checked between the two runs).")
    return lines


def parse(args: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="decant bench scale", description=DESCRIPTION)
    p.add_argument("--docs", type=int, default=DOCS, help="documents of the large run")
    p.add_argument("--small", type=int, default=SMALL_DOCS, help="documents of the small run (0: none)")
    p.add_argument("--workers", type=int, default=WORKERS)
    return p.parse_args(args or [])


def run(quick: bool = True, args: list[str] | None = None) -> dict[str, Any]:
    """`quick` does not change the sizes (this benchmark is not in the quick set): --docs/--small do."""
    from benchmarks.corpora.scale_corpus import scale_corpus
    opts = parse(args)
    sizes = [s for s in (opts.small, opts.docs) if s]
    tmp = Path(tempfile.mkdtemp(prefix="decant-scale-"))
    runs: dict[int, dict[str, Any]] = {}
    build_s: dict[int, float] = {}
    load = [os.getloadavg()[0]]
    try:
        for n in sizes:
            t0 = time.perf_counter()
            paths, folder = scale_corpus(n)
            build_s[n] = round(time.perf_counter() - t0, 1)
            out = tmp / f"out-{n}"
            res = _run_job(paths, str(out), opts.workers)
            s = summarize(res, opts.workers)
            s["near_duplicates"] = near_duplicate_quality(out, folder)
            s["corpus"] = json.loads((folder / "counts.json").read_text())
            s["corpus"]["parquet_bytes_per_doc"] = round(sum(os.path.getsize(p) for p in paths) / n, 1)
            runs[n] = s
            load.append(os.getloadavg()[0])
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    big = runs[max(runs)]
    small = runs[min(runs)] if len(runs) > 1 else None
    figs: dict[str, Any] = {"documents": big["documents"], "wall_s": big["wall_s"],
                            "docs_per_s_per_core_cpu": big["docs_per_s_per_core_cpu"],
                            "docs_per_s_per_core_wall": big["docs_per_s_per_core_wall"],
                            "peak_rss_mb_worker": big["peak_rss_mb_worker"], "peak_rss_mb_driver": big["peak_rss_mb_driver"],
                            "partitions": big["partitions"]}
    if small:
        figs["small_documents"] = small["documents"]
        figs["small_docs_per_s_per_core_cpu"] = small["docs_per_s_per_core_cpu"]
        figs["small_peak_rss_mb_worker"] = small["peak_rss_mb_worker"]
        figs["small_peak_rss_mb_driver"] = small["peak_rss_mb_driver"]
        figs["small_partitions"] = small["partitions"]
        figs["peak_rss_ratio_worker"] = round(big["peak_rss_mb_worker"] / small["peak_rss_mb_worker"], 3)
        figs["peak_rss_ratio_driver"] = round(big["peak_rss_mb_driver"] / small["peak_rss_mb_driver"], 3)
        figs["peak_rss_bounded_1_5x"] = max(figs["peak_rss_ratio_worker"], figs["peak_rss_ratio_driver"]) <= 1.5
    nd = big["near_duplicates"]
    figs.update({"near_dup_precision": round(nd["precision"], 4), "near_dup_recall": round(nd["recall"], 4),
                 "near_dup_targets": nd["targets"], "near_dup_counts_add_up": nd["counts_add_up"],
                 "accounting_ok": all(r["accounting_ok"] for r in runs.values())})
    x = extrapolate(big, small)
    figs["snapshot_core_hours_cpu"] = x["core_hours_cpu"]
    figs["snapshot_shuffle_tb"] = round(sum(x["shuffle_tb_map_output"].values()), 2)
    figs["snapshot_largest_reducer_gb"] = max((r["at_job_partitions"]["largest_reducer_gb"]
                                               for r in x["largest_reducer"].values()), default=None)
    text = extrapolation_text(x)
    rows = []
    for n, r in sorted(runs.items()):
        for name, o in r["operators"].items():
            rows.append({"documents": n, "step": name, "docs in": o["docs_in"], "docs out": o["docs_out"],
                         "cpu s": o["cpu_s"], "wall s": o["wall_s"], "docs/s cpu": o["docs_per_s_cpu"]})
        for name, red in r["reduce"].items():
            rows.append({"documents": n, "step": f"reduce:{name}", "partitions": red["partitions"],
                         "cpu s": round(red["tasks_cpu_s"] + red["driver_cpu_s"], 2),
                         "wall s": red["wall_s"], "largest task MB": red["largest_task_above_base_mb"]})
        rows.append({"documents": n, "step": "WHOLE JOB", "docs in": r["documents"], "docs out": r["kept"],
                     "cpu s": r["cpu_s"], "wall s": r["wall_s"], "docs/s cpu": r["docs_per_s_per_core_cpu"],
                     "peak RSS worker MB": r["peak_rss_mb_worker"], "peak RSS driver MB": r["peak_rss_mb_driver"]})
    notes = [
        f"job: {' -> '.join(next(iter(s)) for s in scale_job()['pipeline'])}; local executor, {opts.workers} workers, "
        f"{os.cpu_count()} CPUs; each job in a fresh process; corpus build/cache lookup (not timed) {build_s} s.",
        "partitions (auto: one per engine.partition_count.BYTES_PER_PARTITION of input): " + "; ".join(
            f"{n:,} documents {r['partitions']}" for n, r in sorted(runs.items())) + ".",
        "docs/s per core: cpu = documents / CPU seconds of the driver and its worker processes (user+system); "
        "wall = documents / (wall seconds x workers). Peak RSS: VmHWM of each worker process (stats.json) and of "
        "the job's driver process.",
        "near-duplicates: universe = documents that reached minhash_dedup; target = injected copy whose source "
        f"also reached it with exact 5-shingle Jaccard >= {THRESHOLD} (texts as minhash sees them); predicted = in "
        "duplicates.parquet. precision = TP/(TP+FP), recall = TP/(TP+FN).",
        "reduce memory: each reduce task replayed on the kept map output with its process's peak-RSS mark reset "
        "(/proc/self/clear_refs): 'largest task MB' = its peak above the process's RSS before it.",
        f"load average (1 min) before / after each run: {[round(v, 1) for v in load]} on {os.cpu_count()} CPUs "
        "(other programs share the cores: trust the cpu figures and the ratios).",
        *text,
    ]
    return {"figures": figs, "rows": rows,
            "inputs": {"docs": opts.docs, "small": opts.small, "workers": opts.workers, "job": scale_job(opts.workers)},
            "runs": {str(n): r for n, r in runs.items()}, "extrapolation": x, "extrapolation_text": text,
            "notes": notes}


if __name__ == "__main__":
    from benchmarks import harness
    harness.run("scale", quick=False, json_path=None, args=sys.argv[1:])

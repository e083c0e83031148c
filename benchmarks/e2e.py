"""End to end: jobs/default.yaml (whatever pipeline it holds) over a WARC and a WET corpus built from
real pages (benchmarks/corpora/), with the local executor on every core of this machine.

Reports, per corpus, for every operator and for the whole job: documents/s and MB/s per core, the
share of operator time each operator takes, peak RSS per worker process, and CCNet's published
cost in the same unit with our projected core-hours for a 3-billion-page snapshot.

Two clocks. Operator `seconds` in stats.json are wall-clock time inside the worker (they grow when
other programs share the cores); `cpu_seconds` are the CPU time the worker spent in the operator
(user + system), which is what a core-hour costs. Per-core rates are given for both; the whole-job
rate is documents / (wall x workers) (everything: start-up, model loading, writing, the barrier)
and documents / CPU seconds of the driver and the workers (same work, without the time spent waiting
for a core another program holds).

Fixed and per-document cost. A job pays for some things once (worker processes starting, imports,
models loading, the barriers' reduce tasks and the files each unit writes, whose number grows with
shards and partitions more than with documents); the quick corpus is small enough that these weigh
a lot. The WET job also runs on a corpus of `wet_small_docs` documents in as many shards: the line
through the two (CPU seconds against documents) gives the fixed CPU seconds and the CPU per
document, and `wet_docs_per_s_per_core_marginal_cpu` is the rate a long job tends to.

Floor. `wet_library_floor_*` is the CPU of the model libraries' own calls on the same documents
(benchmarks/_library_floor.py): the rate no work around them can pass at identical output.
`wet_job_cpu_over_library_floor` is the whole job's CPU per document over that floor's, both from this
run: a machine that runs slower or faster for the whole run moves both, but the floor is one short run of
its own and moves by itself when the machine's speed changes within the run (1.8-3.1 on one evening).
"""
from __future__ import annotations

import copy
import os
import resource
import shutil
import tempfile
import time
from typing import Any

DESCRIPTION = ("jobs/default.yaml end to end over WARC and WET corpora of real pages: docs/s and MB/s per core "
               "per operator and for the job, peak RSS per worker, CCNet's cost in the same unit")
QUICK = True

SIZES = {
    True: {"warc_pages": 1200, "warc_shards": 4, "wet_docs": 6000, "wet_shards": 4, "wet_small_docs": 1000},
    False: {"warc_pages": 8000, "warc_shards": 8, "wet_docs": 40000, "wet_shards": 8, "wet_small_docs": 4000},
}

#: CCNet (Wenzek et al., 2019): one 2019 Common Crawl snapshot, about 3 billion pages, processed from the
#: WET files for about 42-45 thousand CPU core-hours.
CCNET_PAGES = 3.0e9
CCNET_CORE_HOURS = (42_000, 45_000)
SNAPSHOT_PAGES = 3.0e9


def ccnet_pages_per_core_s() -> tuple[float, float, float]:
    lo = CCNET_PAGES / (CCNET_CORE_HOURS[1] * 3600)
    hi = CCNET_PAGES / (CCNET_CORE_HOURS[0] * 3600)
    mid = CCNET_PAGES / (sum(CCNET_CORE_HOURS) / 2 * 3600)
    return lo, mid, hi


def _cpu_self_children() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run_pipeline(spec: dict[str, Any], inputs: list[str], workers: int, out: str) -> dict[str, Any]:
    """Run the job once into `out` and return its stats plus the clocks measured around it."""
    from jobs.runjob import run_job

    job = copy.deepcopy(spec)
    job.setdefault("input", {})["paths"] = []
    job.setdefault("executor", {}).update({"kind": "local", "workers": workers})
    load0 = os.getloadavg()[0]
    cpu0 = _cpu_self_children()
    t0 = time.perf_counter()
    stats = run_job(job, inputs=inputs, out=out, executor="local", workers=workers)
    wall = time.perf_counter() - t0
    cpu = _cpu_self_children() - cpu0
    return {"stats": stats, "wall": wall, "cpu": cpu, "load": (load0, os.getloadavg()[0])}


def _rate(x: float, seconds: float) -> float | None:
    return round(x / seconds, 2) if seconds and seconds > 0 else None


def summarize(label: str, res: dict[str, Any], workers: int, input_bytes: int) -> tuple[list[dict], dict]:
    st = res["stats"]
    ops = st.get("operators") or {}
    total_s = sum(float(s.get("seconds") or 0) for s in ops.values())
    total_cpu = sum(float(s.get("cpu_seconds") or 0) for s in ops.values())
    rows = []
    for name, s in ops.items():
        sec = float(s.get("seconds") or 0)
        cpu = float(s.get("cpu_seconds") or 0)
        rows.append({
            "corpus": label, "operator": name, "docs in": s.get("docs_in", 0), "docs out": s.get("docs_out", 0),
            "wall s": round(sec, 2), "cpu s": round(cpu, 2),
            "docs/s": _rate(s.get("docs_in", 0), sec), "docs/s cpu": _rate(s.get("docs_in", 0), cpu),
            "MB/s": _rate((s.get("bytes_in") or 0) / 1e6, sec),
            "MB/s cpu": _rate((s.get("bytes_in") or 0) / 1e6, cpu),
            "share%": round(100 * sec / total_s, 1) if total_s else None,
            "share% cpu": round(100 * cpu / total_cpu, 1) if total_cpu else None,
        })
    docs = st["total"]["documents_read"]
    content = float((ops.get("reader") or {}).get("bytes_in") or 0)
    core_s = res["wall"] * workers
    job = st.get("job") or {}
    rows.append({
        "corpus": label, "operator": "WHOLE JOB", "docs in": docs, "docs out": st["total"]["documents_kept"],
        "wall s": round(core_s, 2), "cpu s": round(res["cpu"], 2),
        "docs/s": _rate(docs, core_s), "docs/s cpu": _rate(docs, res["cpu"]),
        "MB/s": _rate(content / 1e6, core_s), "MB/s cpu": _rate(content / 1e6, res["cpu"]),
        "share%": 100.0, "share% cpu": 100.0,
    })
    fig = {
        "documents": docs,
        "documents_kept": st["total"]["documents_kept"],
        "accounting_ok": st["total"]["accounting_ok"],
        "wall_s": round(res["wall"], 2),
        "workers": workers,
        "docs_per_s_per_core_wall": _rate(docs, core_s),
        "docs_per_s_per_core_cpu": _rate(docs, res["cpu"]),
        "content_mb_per_s_per_core_wall": _rate(content / 1e6, core_s),
        "content_mb_per_s_per_core_cpu": _rate(content / 1e6, res["cpu"]),
        "input_gz_mb_per_s_per_core_wall": _rate(input_bytes / 1e6, core_s),
        # steady state: CPU inside the reader and the operators only (no process start, model loading, writing)
        "docs_per_s_per_core_operators_cpu": _rate(docs, total_cpu),
        "peak_rss_mb_per_worker": job.get("peak_rss_mb"),
        "rss_mb_per_process": job.get("rss_mb_per_process"),
        "load_average_before_after": [round(x, 2) for x in res["load"]],
    }
    for clock in ("wall", "cpu", "operators_cpu"):
        r = fig[f"docs_per_s_per_core_{clock}"]
        fig[f"projected_core_hours_3B_pages_{clock}"] = round(SNAPSHOT_PAGES / r / 3600) if r else None
    return rows, fig


def fixed_and_marginal(small: dict[str, Any], big: dict[str, Any]) -> dict[str, float | None]:
    """The line through (documents, CPU seconds) of a small and a big run of the same job: what the
    job costs whatever its size, and what each more document costs."""
    n0, n1 = small["stats"]["total"]["documents_read"], big["stats"]["total"]["documents_read"]
    c0, c1 = small["cpu"], big["cpu"]
    if n1 <= n0:
        return {"fixed_cpu_s": None, "cpu_ms_per_doc": None, "docs_per_s_per_core_marginal_cpu": None}
    per_doc = (c1 - c0) / (n1 - n0)
    return {"fixed_cpu_s": round(c1 - per_doc * n1, 2), "cpu_ms_per_doc": round(1000 * per_doc, 3),
            "docs_per_s_per_core_marginal_cpu": round(1 / per_doc, 1) if per_doc > 0 else None}


def run(quick: bool = True) -> dict[str, Any]:
    from benchmarks.corpora.shards import corpus_bytes
    from benchmarks._library_floor import library_floor
    from benchmarks.corpora.warc_corpus import warc_corpus
    from benchmarks.corpora.wet_corpus import wet_corpus
    from engine.job import load_job
    from jobs.paths import DEFAULT_JOB

    size = SIZES[bool(quick)]
    workers = max(1, min(os.cpu_count() or 1, 2 if quick else os.cpu_count() or 1))
    spec = load_job(DEFAULT_JOB)
    pipeline = [next(iter(s)) for s in spec.get("pipeline") or []]
    t0 = time.perf_counter()
    warc = warc_corpus(pages=size["warc_pages"], shards=size["warc_shards"])
    wet = wet_corpus(docs=size["wet_docs"], shards=size["wet_shards"])
    wet_small = wet_corpus(docs=size["wet_small_docs"], shards=size["wet_shards"])
    build_s = time.perf_counter() - t0

    rows: list[dict] = []
    figures: dict[str, Any] = {}
    per_corpus: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="decant-e2e-")
    try:
        for label, paths in (("warc", warc), ("wet", wet)):
            res = run_pipeline(spec, paths, workers, os.path.join(tmp, label))
            r, f = summarize(label, res, workers, corpus_bytes(paths))
            rows.extend(r)
            per_corpus[label] = f
            per_corpus[label]["operators"] = res["stats"].get("operators")
            per_corpus[label]["global"] = res["stats"].get("global")
            if label == "wet":
                small = run_pipeline(spec, wet_small, workers, os.path.join(tmp, "wet-small"))
                per_corpus[label]["small_run"] = {"documents": small["stats"]["total"]["documents_read"],
                                                  "cpu_s": round(small["cpu"], 2), "wall_s": round(small["wall"], 2)}
                per_corpus[label].update(fixed_and_marginal(small, res))
                per_corpus[label]["cpu_s"] = round(res["cpu"], 2)
                per_corpus[label]["library_floor"] = library_floor(paths, os.path.join(tmp, label))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lo, mid, hi = ccnet_pages_per_core_s()
    for label in ("warc", "wet"):
        f = per_corpus[label]
        for k in ("docs_per_s_per_core_wall", "docs_per_s_per_core_cpu", "docs_per_s_per_core_operators_cpu",
                  "content_mb_per_s_per_core_wall", "content_mb_per_s_per_core_cpu", "peak_rss_mb_per_worker",
                  "projected_core_hours_3B_pages_wall", "projected_core_hours_3B_pages_cpu",
                  "projected_core_hours_3B_pages_operators_cpu"):
            figures[f"{label}_{k}"] = f[k]
    wet_fig = per_corpus["wet"]
    for k in ("fixed_cpu_s", "cpu_ms_per_doc", "docs_per_s_per_core_marginal_cpu"):
        figures[f"wet_{k}"] = wet_fig[k]
    floor = wet_fig["library_floor"]
    figures["wet_library_floor_cpu_ms_per_doc"] = floor["cpu_ms_per_doc"]
    figures["wet_library_floor_docs_per_s_per_core"] = floor["docs_per_s_per_core"]
    if wet_fig["fixed_cpu_s"] is not None and wet_fig["cpu_s"]:
        figures["wet_fixed_share_of_cpu"] = round(wet_fig["fixed_cpu_s"] / wet_fig["cpu_s"], 3)
    # the whole job's CPU per document over the library calls' own, both in this run: what the job
    # costs beyond its libraries (the floor is measured once, after the job: it has noise of its own)
    if wet_fig["cpu_s"] and floor.get("cpu_ms_per_doc"):
        figures["wet_job_cpu_over_library_floor"] = round(
            1000 * wet_fig["cpu_s"] / wet_fig["documents"] / floor["cpu_ms_per_doc"], 2)
    figures["ccnet_pages_per_s_per_core"] = round(mid, 1)
    figures["ccnet_pages_per_s_per_core_range"] = f"{lo:.1f}-{hi:.1f}"
    figures["ccnet_core_hours_3B_pages"] = f"{CCNET_CORE_HOURS[0]:,}-{CCNET_CORE_HOURS[1]:,}"
    for clock in ("wall", "cpu", "operators_cpu"):
        r = per_corpus["wet"][f"docs_per_s_per_core_{clock}"]
        figures[f"wet_vs_ccnet_{clock}"] = round(r / mid, 2) if r else None
    figures["peak_rss_mb_per_worker"] = max(x for x in (per_corpus["warc"]["peak_rss_mb_per_worker"],
                                                        per_corpus["wet"]["peak_rss_mb_per_worker"], 0) if x)
    notes = [
        f"pipeline (jobs/default.yaml): {' -> '.join(pipeline) or '(empty)'}; local executor, {workers} workers",
        "CCNet conversion: ~3.0e9 pages of one 2019 snapshot (from WET, no HTML extraction) for 42,000-45,000 "
        f"core-hours -> 3e9 / (45,000 x 3600) = {lo:.1f} to 3e9 / (42,000 x 3600) = {hi:.1f} pages/s per core "
        f"(middle {mid:.1f}). Our projection: 3e9 pages / (docs/s per core) / 3600 = core-hours; compare the WET "
        "run with CCNet (same kind of input); the WARC run also pays for HTML extraction (trafilatura).",
        "Rates are per core. docs/s and MB/s use wall-clock operator time inside the workers; 'cpu' uses the "
        "CPU time the worker "
        "spent (user + system), which is immune to other programs sharing the cores. WHOLE JOB: documents / "
        "(wall x workers), and documents / CPU seconds of the driver plus its worker processes (process start and "
        "model loading included: small at 3e9 pages, so '_operators_cpu' figures give the steady state: CPU in the "
        "reader and the operators only). MB/s counts "
        "decoded content (HTML for WARC, text for WET) as read by the reader.",
        f"load average before/after: warc {per_corpus['warc']['load_average_before_after']}, "
        f"wet {per_corpus['wet']['load_average_before_after']} on {os.cpu_count()} cores "
        "(above the core count the wall-clock figures are inflated; trust the cpu columns).",
        f"fixed vs per-document (WET): the same job on {per_corpus['wet']['small_run']['documents']:,} documents "
        f"in {size['wet_shards']} shards took {per_corpus['wet']['small_run']['cpu_s']} CPU s, on "
        f"{per_corpus['wet']['documents']:,} {per_corpus['wet']['cpu_s']} CPU s: fixed "
        f"{per_corpus['wet']['fixed_cpu_s']} CPU s (start-up, models, barriers, files per unit), then "
        f"{per_corpus['wet']['cpu_ms_per_doc']} CPU ms per document "
        f"({per_corpus['wet']['docs_per_s_per_core_marginal_cpu']} docs/s per core).",
        f"library floor (WET; benchmarks/_library_floor.py): fastText lid.176 predict on every document "
        f"{floor['langid_fasttext_cpu_s']} CPU s, the classifier's predict {floor['classifier_fasttext_cpu_s']}, "
        f"SentencePiece {floor['perplexity_sentencepiece_cpu_s']} and KenLM {floor['perplexity_kenlm_cpu_s']} "
        f"(one batch per language): {floor['cpu_ms_per_doc']} CPU ms per document, so at most "
        f"{floor['docs_per_s_per_core']} docs/s per core at identical output whatever the rest costs; "
        f"the whole job takes {figures.get('wet_job_cpu_over_library_floor')}x that CPU per document "
        "(wet_job_cpu_over_library_floor: both measured in this run; the floor is one short run after the "
        "job, so a change of the machine's speed between the two moves the ratio).",
        f"corpus build/cache lookup took {build_s:.1f}s (not counted).",
    ]
    return {
        "figures": figures,
        "rows": rows,
        "inputs": {"pipeline": pipeline, "job": spec, "workers": workers,
                   "warc": {"pages": size["warc_pages"], "shards": len(warc), "gz_bytes": corpus_bytes(warc),
                            "paths": warc},
                   "wet": {"docs": size["wet_docs"], "shards": len(wet), "gz_bytes": corpus_bytes(wet),
                           "paths": wet},
                   "wet_small": {"docs": size["wet_small_docs"], "shards": len(wet_small),
                                 "gz_bytes": corpus_bytes(wet_small), "paths": wet_small}},
        "per_corpus": per_corpus,
        "notes": notes,
    }

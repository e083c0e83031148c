"""`decant report OUT`: an HTML page with PNG plots of a finished output, and the same summary as tables.

What it shows, each only when the output has it (a job without langid has no languages, a job
without perplexity no perplexity, a job without MinHash dedup no duplicates.parquet):

- documents per language (stacked by quality bucket when there are buckets);
- the perplexity distribution per language with the bucket cut-offs: the models' cut-offs
  (`<models>/cutoffs.json` or the job's `cutoffs:` file, found through the job recorded in
  OUT/_work/job.json) when available, else the percentiles of the data at the job's percentiles
  (default 30 and 60), marked as such;
- documents dropped per operator and reason (stats.json; the rejects folder when stats.json is
  missing);
- duplicate cluster sizes from OUT/duplicates.parquet (cluster = its removed rows + the kept one);
- throughput per operator from stats.json: docs/s and MB/s per core (seconds are summed over
  workers), share of the time, and the job's wall time.

Plots are PNG files beside the page (matplotlib, Agg backend); the page holds no external links
and a small script that marks `<body data-images-ok="yes">` once every image has loaded.
"""
from __future__ import annotations

import gzip
import html
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

#: Languages shown in the per-language perplexity plot (the most frequent ones).
MAX_PPL_LANGS = 9
#: Bars in the languages and drop-reasons plots.
MAX_BARS = 30


# ------------------------------------------------------------------ collecting


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _partition_values(rel: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in rel.split("/")[:-1] if "=" in p)


def _iter_tree(root: Path):
    if not root.is_dir():
        return
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith((".parquet", ".jsonl.gz")) and not name.startswith("."):
                p = Path(dirpath) / name
                yield p, _partition_values(str(p.relative_to(root)).replace(os.sep, "/"))


def _doc_columns(path: Path, wanted: list[str]) -> tuple[int, dict[str, list]]:
    """Row count and the wanted columns (those the file has) of one documents file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        have = [c for c in wanted if c in pf.schema_arrow.names]
        n = pf.metadata.num_rows
        if not have or n == 0:
            return n, {}
        t = pf.read(columns=have)
        return n, {c: t.column(c).to_pylist() for c in have}
    cols: dict[str, list] = {c: [] for c in wanted}
    n = 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            n += 1
            for c in wanted:
                cols[c].append(row.get(c))
    return n, {c: v for c, v in cols.items() if any(x is not None for x in v)}


def _job_spec(out: Path) -> dict[str, Any]:
    rec = _read_json(out / "_work" / "job.json") or {}
    return rec.get("job") or {}


def _step_params(job: dict[str, Any], name: str) -> dict[str, Any] | None:
    for step in job.get("pipeline") or []:
        if isinstance(step, dict) and name in step:
            return dict(step[name] or {})
    return None


def _model_cutoffs(job: dict[str, Any]) -> tuple[dict[str, tuple[float, ...]], str, list[int]]:
    """The perplexity cut-offs the job used, from its models' cutoffs file, if it can be found."""
    params = _step_params(job, "perplexity")
    percentiles = [30, 60]
    if params is None:
        return {}, "", percentiles
    percentiles = list(params.get("percentiles") or percentiles)
    try:
        from operators.perplexity import REPO_ROOT, load_cutoffs, resolve_models_dir
    except ImportError:
        return {}, "", percentiles
    try:
        models = resolve_models_dir(params.get("models", "bundled"))
        path = Path(params["cutoffs"]) if params.get("cutoffs") else models / "cutoffs.json"
        if params.get("cutoffs") and not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path
        if path.is_file():
            return load_cutoffs(path, percentiles), str(path), percentiles
    except (OSError, ValueError, KeyError):
        pass
    return {}, "", percentiles


def _cluster_sizes(path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["id", "cluster_id", "kept_id"])
    if t.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    members = defaultdict(set)
    for cid, did, kid in zip(t.column("cluster_id").to_pylist(), t.column("id").to_pylist(),
                             t.column("kept_id").to_pylist()):
        s = members[cid]
        s.add(did)
        s.add(kid)
    return np.array(sorted((len(s) for s in members.values()), reverse=True), dtype=np.int64)


def collect(out: str | os.PathLike) -> dict[str, Any]:
    """Everything the report shows, from the files of a finished output."""
    root = Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not an output folder")
    stats = _read_json(root / "stats.json")
    job = _job_spec(root)
    data: dict[str, Any] = {"out": str(root.resolve()), "stats": stats, "job": job}

    # documents: counts per (language, bucket), perplexity per language
    counts: Counter = Counter()
    ppl: dict[str, list[float]] = defaultdict(list)
    has_lang = has_bucket = has_ppl = False
    files = 0
    for path, parts in _iter_tree(root / "documents"):
        files += 1
        n, cols = _doc_columns(path, ["language", "bucket", "perplexity"])
        langs = cols.get("language") or [parts.get("language")] * n
        buckets = cols.get("bucket") or [parts.get("bucket")] * n
        for lang, b in zip(langs, buckets):
            counts[(lang or "unknown", b or "none")] += 1
        if "perplexity" in cols:
            for lang, v in zip(langs, cols["perplexity"]):
                if v is not None and np.isfinite(v) and v > 0:
                    ppl[lang or "unknown"].append(float(v))
    has_lang = any(lang not in ("unknown", None) for lang, _ in counts) or bool(
        stats and "langid" in (stats.get("operators") or {}))
    has_bucket = any(b != "none" for _, b in counts)
    has_ppl = any(ppl.values())
    data["documents"] = {"files": files, "counts": counts, "has_language": has_lang, "has_bucket": has_bucket,
                         "total": sum(counts.values())}

    cut, cut_source, percentiles = _model_cutoffs(job)
    cutoffs: dict[str, dict[str, Any]] = {}
    for lang, vals in ppl.items():
        if lang in cut:
            cutoffs[lang] = {"values": list(cut[lang]), "source": "model"}
        elif len(vals) >= 2:
            cutoffs[lang] = {"values": [float(x) for x in np.percentile(vals, percentiles)], "source": "data"}
    data["perplexity"] = {"values": {k: np.asarray(v) for k, v in ppl.items()}, "present": has_ppl,
                          "cutoffs": cutoffs, "percentiles": percentiles, "cutoffs_file": cut_source}

    # drops per operator and reason
    drops: list[tuple[str, str, int]] = []
    if stats and stats.get("operators"):
        for op, s in stats["operators"].items():
            for reason, k in (s.get("dropped") or {}).items():
                if k:
                    drops.append((op, reason, int(k)))
        data["drops_source"] = "stats.json"
    else:
        c: Counter = Counter()
        for path, parts in _iter_tree(root / "rejects"):
            n, cols = _doc_columns(path, ["operator", "reason"])
            ops = cols.get("operator") or [parts.get("operator", "unknown")] * n
            for op, r in zip(ops, cols.get("reason") or ["dropped"] * n):
                c[(op, r or "dropped")] += 1
        drops = [(op, r, k) for (op, r), k in c.items()]
        data["drops_source"] = "rejects/"
    data["drops"] = sorted(drops, key=lambda x: -x[2])

    dup = root / "duplicates.parquet"
    data["duplicates"] = _cluster_sizes(dup) if dup.is_file() else None

    # throughput per operator
    rows = []
    if stats and stats.get("operators"):
        ops = stats["operators"]
        total_s = sum(float(s.get("seconds") or 0) for s in ops.values()) or 0.0
        names = (["reader"] if "reader" in ops else []) + [n for n in ops if n != "reader"]
        for name in names:
            s = ops[name]
            sec = float(s.get("seconds") or 0)
            cpu = float(s.get("cpu_seconds") or 0)
            rows.append({
                "operator": name, "docs_in": int(s.get("docs_in") or 0), "docs_out": int(s.get("docs_out") or 0),
                "dropped": int(sum((s.get("dropped") or {}).values())), "seconds": sec,
                "docs_per_s": (s.get("docs_in") or 0) / sec if sec > 0 else None,
                "mb_per_s": (s.get("bytes_in") or 0) / 1e6 / sec if sec > 0 and s.get("bytes_in") else None,
                "share": sec / total_s if total_s > 0 else None,
                "cpu_seconds": cpu if "cpu_seconds" in s else None,
                "docs_per_cpu_s": (s.get("docs_in") or 0) / cpu if cpu > 0 else None,
            })
    data["throughput"] = rows
    return data


# ------------------------------------------------------------------ plots


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=96, facecolor="white")
    _plt().close(fig)
    return path.name


BUCKET_COLORS = {"head": "#2b8a3e", "middle": "#f59f00", "tail": "#c92a2a", "none": "#4c6ef5"}


def plot_languages(data: dict[str, Any], folder: Path) -> str | None:
    counts: Counter = data["documents"]["counts"]
    if not counts or not data["documents"]["has_language"]:
        return None
    plt = _plt()
    by_lang: Counter = Counter()
    for (lang, _), k in counts.items():
        by_lang[lang] += k
    langs = [lang for lang, _ in by_lang.most_common(MAX_BARS)][::-1]
    buckets = [b for b in ("head", "middle", "tail", "none") if any(bb == b for _, bb in counts)]
    buckets += sorted({b for _, b in counts} - set(buckets))
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(langs) + 1.2)))
    left = np.zeros(len(langs))
    for b in buckets:
        vals = np.array([counts.get((lang, b), 0) for lang in langs], dtype=float)
        if vals.sum() == 0:
            continue
        ax.barh(langs, vals, left=left, color=BUCKET_COLORS.get(b, None), label=f"bucket {b}")
        left += vals
    ax.set_xlabel("documents kept")
    more = len(by_lang) - len(langs)
    ax.set_title("Documents per language" + (f" (top {len(langs)}; {more} more)" if more > 0 else ""))
    if len(buckets) > 1 or buckets != ["none"]:
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, folder / "languages.png")


def plot_perplexity(data: dict[str, Any], folder: Path) -> str | None:
    ppl = data["perplexity"]
    if not ppl["present"]:
        return None
    plt = _plt()
    vals = {k: v for k, v in ppl["values"].items() if len(v)}
    langs = sorted(vals, key=lambda k: -len(vals[k]))[:MAX_PPL_LANGS]
    ncol = min(3, len(langs))
    nrow = (len(langs) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    for ax in axes.flat[len(langs):]:
        ax.axis("off")
    for ax, lang in zip(axes.flat, langs):
        v = vals[lang]
        lo, hi = max(v.min(), 1e-3), max(v.max(), 1e-3)
        bins = np.geomspace(lo, hi * 1.0001, 30) if hi > lo else 10
        ax.hist(v, bins=bins, color="#4263eb", alpha=0.8)
        if hi > lo:
            ax.set_xscale("log")
        cut = ppl["cutoffs"].get(lang)
        if cut:
            for x, pct, col in zip(cut["values"], ppl["percentiles"], ("#2b8a3e", "#c92a2a")):
                ax.axvline(x, color=col, linestyle="--", linewidth=1.5,
                           label=f"p{pct} {x:,.0f} ({'model' if cut['source'] == 'model' else 'data'})")
            ax.legend(fontsize=7)
        ax.set_title(f"{lang} (n={len(v):,})", fontsize=10)
        ax.set_xlabel("perplexity", fontsize=8)
    fig.suptitle("Perplexity per language, with the head / middle / tail cut-offs")
    return _save(fig, folder / "perplexity.png")


def plot_drops(data: dict[str, Any], folder: Path) -> str | None:
    drops = data["drops"]
    if not drops:
        return None
    plt = _plt()
    top = drops[:MAX_BARS][::-1]
    labels = [f"{op}: {r}" for op, r, _ in top]
    ops = list(dict.fromkeys(op for op, _, _ in drops))
    cmap = plt.get_cmap("tab10")
    colors = [cmap(ops.index(op) % 10) for op, _, _ in top]
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(top) + 1.2)))
    ax.barh(labels, [k for _, _, k in top], color=colors)
    ax.set_xlabel("documents dropped")
    ax.set_title("Documents dropped per operator and reason")
    return _save(fig, folder / "drops.png")


def plot_duplicates(data: dict[str, Any], folder: Path) -> str | None:
    sizes = data["duplicates"]
    if sizes is None or len(sizes) == 0:
        return None
    plt = _plt()
    c = Counter(sizes.tolist())
    xs = sorted(c)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([str(x) for x in xs] if len(xs) <= 40 else xs, [c[x] for x in xs], color="#7048e8")
    ax.set_yscale("log")
    ax.set_xlabel("documents in the cluster (kept + removed)")
    ax.set_ylabel("clusters")
    ax.set_title(f"Duplicate cluster sizes ({len(sizes):,} clusters, {int(sizes.sum() - len(sizes)):,} removed)")
    return _save(fig, folder / "duplicates.png")


def plot_throughput(data: dict[str, Any], folder: Path) -> str | None:
    rows = [r for r in data["throughput"] if r["seconds"] > 0 and r["docs_in"] > 0]
    if not rows:
        return None
    plt = _plt()
    names = [r["operator"] for r in rows][::-1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, max(2.5, 0.4 * len(rows) + 1.2)))
    a1.barh(names, [r["docs_per_s"] for r in rows][::-1], color="#1c7ed6")
    a1.set_xscale("log")
    a1.set_xlabel("documents / s per core (log)")
    a1.set_title("Throughput per operator")
    a2.barh(names, [100 * (r["share"] or 0) for r in rows][::-1], color="#e8590c")
    a2.set_xlabel("% of operator time")
    a2.set_title("Share of the time")
    return _save(fig, folder / "throughput.png")


# ------------------------------------------------------------------ page and console


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The summary as (title, columns, rows) tables: what the console and the page both show."""
    out = []
    st = data["stats"] or {}
    tot = st.get("total") or {}
    job = st.get("job") or {}
    summary = [["documents read", _fmt(tot.get("documents_read"))],
               ["documents kept", _fmt(tot.get("documents_kept", data["documents"]["total"]))],
               ["documents dropped", _fmt(tot.get("documents_dropped"))],
               ["accounting", "ok" if tot.get("accounting_ok") else ("MISMATCH" if tot else "no stats.json")],
               ["shard errors", _fmt(tot.get("shard_errors"))],
               ["input shards", _fmt(job.get("inputs"))],
               ["wall seconds", _fmt(job.get("wall_seconds"))]]
    if job.get("peak_rss_mb") is not None:
        summary.append(["peak RSS per worker (MB)", _fmt(job.get("peak_rss_mb"))])
    out.append(("Summary", ["", "value"], summary))
    counts: Counter = data["documents"]["counts"]
    if counts:
        by_lang: Counter = Counter()
        for (lang, _), k in counts.items():
            by_lang[lang] += k
        bks = sorted({b for _, b in counts}, key=lambda b: ("head", "middle", "tail", "none").index(b)
                     if b in ("head", "middle", "tail", "none") else 9) if data["documents"]["has_bucket"] else []
        rows = []
        for lang, k in by_lang.most_common(MAX_BARS):
            rows.append([lang, _fmt(k)] + [_fmt(counts.get((lang, b), 0)) for b in bks])
        if len(by_lang) > MAX_BARS:
            rest = sum(k for lang, k in by_lang.most_common()[MAX_BARS:])
            rows.append([f"({len(by_lang) - MAX_BARS} more)", _fmt(rest)] + [""] * len(bks))
        out.append(("Documents per language", ["language", "documents"] + [f"bucket {b}" for b in bks], rows))
    ppl = data["perplexity"]
    if ppl["present"]:
        rows = []
        for lang, v in sorted(ppl["values"].items(), key=lambda kv: -len(kv[1])):
            cut = ppl["cutoffs"].get(lang)
            rows.append([lang, _fmt(len(v)), _fmt(float(np.median(v))),
                         " / ".join(_fmt(x) for x in cut["values"]) if cut else "-", cut["source"] if cut else "-"])
        p = ppl["percentiles"]
        out.append(("Perplexity", ["language", "documents", "median", f"cut-offs p{p[0]} / p{p[1]}", "cut-offs from"],
                    rows))
    if data["drops"]:
        out.append((f"Dropped per operator and reason (from {data['drops_source']})",
                    ["operator", "reason", "documents"], [[op, r, _fmt(k)] for op, r, k in data["drops"]]))
    sizes = data["duplicates"]
    if sizes is not None:
        if len(sizes):
            out.append(("Duplicate clusters", ["", "value"],
                        [["clusters", _fmt(len(sizes))], ["documents removed", _fmt(int(sizes.sum() - len(sizes)))],
                         ["largest cluster", _fmt(int(sizes.max()))], ["median size", _fmt(float(np.median(sizes)))]]))
        else:
            out.append(("Duplicate clusters", ["", "value"], [["clusters", "0"]]))
    if data["throughput"]:
        cpu = any(r["cpu_seconds"] is not None for r in data["throughput"])
        rows = [[r["operator"], _fmt(r["docs_in"]), _fmt(r["docs_out"]), _fmt(r["dropped"]), f"{r['seconds']:.2f}",
                 _fmt(r["docs_per_s"]), _fmt(r["mb_per_s"]),
                 f"{100 * r['share']:.1f}%" if r["share"] is not None else "-"]
                + ([_fmt(r["cpu_seconds"]), _fmt(r["docs_per_cpu_s"])] if cpu else []) for r in data["throughput"]]
        out.append(("Throughput per operator (seconds summed over workers: rates are per core)",
                    ["operator", "docs in", "docs out", "dropped", "seconds", "docs/s", "MB/s", "share"]
                    + (["cpu seconds", "docs/cpu s"] if cpu else []), rows))
    glob_ = st.get("global") or {}
    if glob_:
        rows = []
        for op, res in glob_.items():
            if isinstance(res, dict):
                for k, v in res.items():
                    if isinstance(v, (int, float, str, bool)):
                        rows.append([op, k, _fmt(v)])
        if rows:
            out.append(("Global steps", ["operator", "figure", "value"], rows))
    return out


def print_summary(data: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for title, cols, rows in tables(data):
        t = Table(title=title)
        for i, c in enumerate(cols):
            t.add_column(c, justify="left" if i == 0 or c in ("reason", "operator", "cut-offs from") else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #212529;
       background: #ffffff; max-width: 1150px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dee2e6; }
p.meta { color: #6c757d; font-size: 13px; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; }
th, td { border: 1px solid #dee2e6; padding: 3px 8px; text-align: right; }
th { background: #f1f3f5; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #e9ecef; display: block; margin: 8px 0; }
.missing { color: #868e96; font-style: italic; }
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-ok', ok === imgs.length ? 'yes' : 'no');
});
"""


def _html_table(cols: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict[str, Any], images: dict[str, str | None]) -> str:
    st = data["stats"] or {}
    job = st.get("job") or {}
    tabs = {t: (c, r) for t, c, r in tables(data)}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>decant report: "
             f"{html.escape(os.path.basename(data['out']))}</title><style>{_CSS}</style></head><body>",
             f"<h1>decant report</h1><p class='meta'>{html.escape(data['out'])}"
             f"{' &middot; job ' + html.escape(str(job.get('name'))) if job.get('name') else ''}"
             f"{' &middot; ' + html.escape(str(job.get('inputs'))) + ' input shards' if job.get('inputs') else ''}</p>"]

    def section(title: str, img_key: str, alt: str, missing: str, table_prefix: str | None = None,
                note: str = "") -> None:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if note:
            parts.append(f"<p class='meta'>{html.escape(note)}</p>")
        if images.get(img_key):
            parts.append(f"<img src='{html.escape(images[img_key])}' alt='{html.escape(alt)}'>")
        else:
            parts.append(f"<p class='missing'>{html.escape(missing)}</p>")
        for t, (c, r) in tabs.items():
            if table_prefix and t.startswith(table_prefix):
                parts.append(_html_table(c, r))

    parts.append("<h2>Summary</h2>" + _html_table(*tabs["Summary"]))
    section("Documents per language", "languages", "documents per language",
            "no documents in this output" if not data["documents"]["counts"] else
            "this output has no languages (a job without langid)", "Documents per language")
    ppl = data["perplexity"]
    note = ""
    if ppl["present"]:
        srcs = {c["source"] for c in ppl["cutoffs"].values()}
        note = ("cut-offs from " + (ppl["cutoffs_file"] if "model" in srcs else "")
                + (" and " if len(srcs) > 1 else "")
                + (f"percentiles {ppl['percentiles']} of these documents (no model cut-offs)"
                   if "data" in srcs else ""))
    section("Perplexity per language", "perplexity", "perplexity distribution per language",
            "this output has no perplexity (a job without the perplexity step)", "Perplexity", note)
    section("Dropped documents", "drops", "documents dropped per operator and reason",
            "no document was dropped", "Dropped per operator",
            f"counted from {data['drops_source']}" if data["drops"] else "")
    section("Duplicate clusters", "duplicates", "duplicate cluster sizes",
            "no duplicates.parquet in this output (a job without MinHash dedup)" if data["duplicates"] is None
            else "no duplicate clusters", "Duplicate clusters")
    section("Throughput per stage", "throughput", "throughput per operator",
            "no stats.json with timings in this output", "Throughput per operator",
            f"wall time {job['wall_seconds']:.1f} s" if job.get("wall_seconds") is not None else "")
    if "Global steps" in tabs:
        parts.append("<h2>Global steps</h2>" + _html_table(*tabs["Global steps"]))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(out: str | os.PathLike, html_path: str | os.PathLike | None = None, console=None,
                 quiet: bool = False) -> str:
    """Write OUT/report/index.html (or html_path) and its PNG plots beside it; print the summary."""
    data = collect(out)
    page = Path(html_path) if html_path else Path(out) / "report" / "index.html"
    folder = page.parent
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "languages": plot_languages(data, folder),
        "perplexity": plot_perplexity(data, folder),
        "drops": plot_drops(data, folder),
        "duplicates": plot_duplicates(data, folder),
        "throughput": plot_throughput(data, folder),
    }
    tmp = page.with_name(f".{page.name}.tmp")
    tmp.write_text(render_html(data, images), encoding="utf-8")
    os.replace(tmp, page)
    if not quiet:
        print_summary(data, console)
    return str(page)

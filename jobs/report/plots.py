"""The report's figures: matplotlib (Agg backend) PNG images of the collected data, as bytes.

Each plot returns None when the output has nothing for it (no languages, no perplexity, no drop,
no duplicate cluster, no timing), so the page can say why instead of showing an empty figure.
"""
from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable

import numpy as np

from jobs.report.collect import NO_BUCKET, ReportData

#: Languages shown in the per-language perplexity plot (the most frequent ones).
MAX_PPL_LANGS = 9
#: Bars in the languages and drop-reasons plots.
MAX_BARS = 30
#: Longest partition value or reason shown whole on an axis (the tables keep the exact value).
MAX_LABEL = 40

BUCKET_COLORS = {"head": "#2b8a3e", "middle": "#f59f00", "tail": "#c92a2a", NO_BUCKET: "#4c6ef5"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def axis_label(text: str) -> str:
    """A value as an axis label: cut when long, `$` escaped so matplotlib never reads it as math."""
    if len(text) > MAX_LABEL:
        text = text[:MAX_LABEL - 1] + "…"
    return text.replace("$", r"\$")


def _png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, facecolor="white")
    _pyplot().close(fig)
    return buf.getvalue()


def plot_languages(data: ReportData) -> bytes | None:
    """Documents kept per language, stacked by bucket."""
    docs = data.documents
    if not docs.counts or not docs.has_language:
        return None
    plt = _pyplot()
    by_lang = docs.per_language()
    langs = [lang for lang, _ in by_lang.most_common(MAX_BARS)][::-1]
    buckets = docs.buckets()
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(langs) + 1.2)))
    positions = np.arange(len(langs))
    left = np.zeros(len(langs))
    for i, b in enumerate(buckets):
        vals = np.array([docs.counts.get((lang, b), 0) for lang in langs], dtype=float)
        if vals.sum() == 0:
            continue
        ax.barh(positions, vals, left=left, color=BUCKET_COLORS.get(b, cmap(i % 10)), label=axis_label(f"bucket {b}"))
        left += vals
    ax.set_yticks(positions, [axis_label(lang) for lang in langs])
    ax.set_xlabel("documents kept")
    more = len(by_lang) - len(langs)
    ax.set_title("Documents per language" + (f" (top {len(langs)}; {more} more)" if more > 0 else ""))
    if buckets != [NO_BUCKET]:
        ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def plot_perplexity(data: ReportData) -> bytes | None:
    """Perplexity histogram per language (log scale) with the cut-offs between head, middle and tail."""
    ppl = data.perplexity
    if not ppl.present:
        return None
    plt = _pyplot()
    vals = {k: v for k, v in ppl.values.items() if len(v)}
    langs = sorted(vals, key=lambda k: (-len(vals[k]), k))[:MAX_PPL_LANGS]
    ncol = min(3, len(langs))
    nrow = (len(langs) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    for ax in axes.flat[len(langs):]:
        ax.axis("off")
    for ax, lang in zip(axes.flat, langs):
        v = vals[lang]
        cut = ppl.cutoffs.get(lang)
        # bins over the data and the cut-offs together: bars keep a visible width however far apart they are
        span = np.concatenate([v, cut.values if cut else []])
        lo, hi = max(span.min(), 1e-3), max(span.max(), 1e-3)
        log = hi > 10 * lo  # a log axis only across a decade or more: narrower ones get crowded tick labels
        bins = np.geomspace(lo, hi * 1.0001, 30) if log else np.linspace(lo, hi, 30) if hi > lo else 10
        ax.hist(v, bins=bins, color="#4263eb", alpha=0.8)
        if log:
            ax.set_xscale("log")
        if cut:
            for x, pct, col in zip(cut.values, ppl.percentiles, ("#2b8a3e", "#c92a2a")):
                ax.axvline(x, color=col, linestyle="--", linewidth=1.5, label=f"p{pct} {x:,.0f} ({cut.source})")
            ax.legend(fontsize=7)
        ax.set_title(f"{axis_label(lang)} (n={len(v):,})", fontsize=10)
        ax.set_xlabel("perplexity", fontsize=8)
    fig.suptitle("Perplexity per language, with the head / middle / tail cut-offs")
    return _png(fig)


def plot_drops(data: ReportData) -> bytes | None:
    """Documents dropped per operator and reason, coloured by operator."""
    if not data.drops:
        return None
    plt = _pyplot()
    top = data.drops[:MAX_BARS][::-1]
    ops = list(dict.fromkeys(d.operator for d in data.drops))
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(top) + 1.2)))
    positions = np.arange(len(top))
    ax.barh(positions, [d.documents for d in top], color=[cmap(ops.index(d.operator) % 10) for d in top])
    ax.set_yticks(positions, [axis_label(f"{d.operator}: {d.reason}") for d in top])
    ax.set_xlabel("documents dropped")
    ax.set_title("Documents dropped per operator and reason")
    return _png(fig)


def plot_duplicates(data: ReportData) -> bytes | None:
    """How many duplicate clusters have each size."""
    sizes = data.duplicates
    if sizes is None or len(sizes) == 0:
        return None
    plt = _pyplot()
    c = Counter(sizes.tolist())
    xs = sorted(c)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([str(x) for x in xs] if len(xs) <= 40 else xs, [c[x] for x in xs], color="#7048e8")
    ax.set_yscale("log")
    ax.set_xlabel("documents in the cluster (kept + removed)")
    ax.set_ylabel("clusters")
    ax.set_title(f"Duplicate cluster sizes ({len(sizes):,} clusters, {int(sizes.sum() - len(sizes)):,} removed)")
    return _png(fig)


def plot_throughput(data: ReportData) -> bytes | None:
    """Documents per second per core and share of the operator time, per operator."""
    rows = [r for r in data.throughput if r.seconds > 0 and r.docs_in > 0]
    if not rows:
        return None
    plt = _pyplot()
    names = [r.operator for r in rows][::-1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, max(2.5, 0.4 * len(rows) + 1.2)))
    a1.barh(names, [r.docs_per_s for r in rows][::-1], color="#1c7ed6")
    a1.set_xscale("log")
    a1.set_xlabel("documents / s per core (log)")
    a1.set_title("Throughput per operator")
    a2.barh(names, [100 * (r.share or 0) for r in rows][::-1], color="#e8590c")
    a2.set_xlabel("% of operator time")
    a2.set_title("Share of the time")
    return _png(fig)


#: Every plot of the page, by the name of its PNG file (without `.png`).
PLOTS: dict[str, Callable[[ReportData], bytes | None]] = {
    "languages": plot_languages,
    "perplexity": plot_perplexity,
    "drops": plot_drops,
    "duplicates": plot_duplicates,
    "throughput": plot_throughput,
}

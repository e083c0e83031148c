"""The report's figures as tables of text: what `decant report` prints and what the page lists under its plots."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.report.collect import ReportData

#: Rows of the documents-per-language table before the rest is summed into one row.
MAX_LANGUAGE_ROWS = 30


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    #: The page section this table belongs to (one of page.SECTIONS), or "" for a section of its own.
    section: str = ""


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_table(data: ReportData) -> Table:
    st = data.stats or {}
    tot = st.get("total") or {}
    job = st.get("job") or {}
    rows = [["documents read", fmt(tot.get("documents_read"))],
            ["documents kept", fmt(tot.get("documents_kept", data.documents.total))],
            ["documents dropped", fmt(tot.get("documents_dropped"))],
            ["accounting", "ok" if tot.get("accounting_ok") else ("MISMATCH" if tot else "no stats.json")],
            ["shard errors", fmt(tot.get("shard_errors"))],
            ["input shards", fmt(job.get("inputs"))],
            ["wall seconds", fmt(job.get("wall_seconds"))]]
    if job.get("peak_rss_mb") is not None:
        rows.append(["peak RSS per worker (MB)", fmt(job.get("peak_rss_mb"))])
    return Table("Summary", ["", "value"], rows, "summary")


def language_table(data: ReportData) -> Table | None:
    docs = data.documents
    if not docs.counts:
        return None
    by_lang = docs.per_language()
    buckets = docs.buckets() if docs.has_bucket else []
    ranked = sorted(by_lang.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [[lang, fmt(k)] + [fmt(docs.counts.get((lang, b), 0)) for b in buckets]
            for lang, k in ranked[:MAX_LANGUAGE_ROWS]]
    if len(ranked) > MAX_LANGUAGE_ROWS:
        rest = sum(k for _, k in ranked[MAX_LANGUAGE_ROWS:])
        rows.append([f"({len(ranked) - MAX_LANGUAGE_ROWS} more)", fmt(rest)] + [""] * len(buckets))
    return Table("Documents per language", ["language", "documents"] + [f"bucket {b}" for b in buckets], rows,
                 "languages")


def perplexity_table(data: ReportData) -> Table | None:
    ppl = data.perplexity
    if not ppl.present:
        return None
    rows = []
    for lang, v in sorted(ppl.values.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        cut = ppl.cutoffs.get(lang)
        rows.append([lang, fmt(len(v)), fmt(float(np.median(v))) if len(v) else "-",
                     " / ".join(fmt(x) for x in cut.values) if cut else "-", cut.source if cut else "-"])
    p = ppl.percentiles
    return Table("Perplexity", ["language", "documents", "median", f"cut-offs p{p[0]} / p{p[1]}", "cut-offs from"],
                 rows, "perplexity")


def drops_table(data: ReportData) -> Table | None:
    if not data.drops:
        return None
    return Table(f"Dropped per operator and reason (from {data.drops_source})", ["operator", "reason", "documents"],
                 [[d.operator, d.reason, fmt(d.documents)] for d in data.drops], "drops")


def duplicates_table(data: ReportData) -> Table | None:
    sizes = data.duplicates
    if sizes is None:
        return None
    if not len(sizes):
        return Table("Duplicate clusters", ["", "value"], [["clusters", "0"]], "duplicates")
    return Table("Duplicate clusters", ["", "value"],
                 [["clusters", fmt(len(sizes))], ["documents removed", fmt(int(sizes.sum() - len(sizes)))],
                  ["largest cluster", fmt(int(sizes.max()))], ["median size", fmt(float(np.median(sizes)))]],
                 "duplicates")


def throughput_table(data: ReportData) -> Table | None:
    if not data.throughput:
        return None
    cpu = any(r.cpu_seconds is not None for r in data.throughput)
    rows = [[r.operator, fmt(r.docs_in), fmt(r.docs_out), fmt(r.dropped), f"{r.seconds:.2f}", fmt(r.docs_per_s),
             fmt(r.mb_per_s), f"{100 * r.share:.1f}%" if r.share is not None else "-"]
            + ([fmt(r.cpu_seconds), fmt(r.docs_per_cpu_s)] if cpu else []) for r in data.throughput]
    return Table("Throughput per operator (seconds summed over workers: rates are per core)",
                 ["operator", "docs in", "docs out", "dropped", "seconds", "docs/s", "MB/s", "share"]
                 + (["cpu seconds", "docs/cpu s"] if cpu else []), rows, "throughput")


def global_steps_table(data: ReportData) -> Table | None:
    rows = [[op, k, fmt(v)] for op, res in ((data.stats or {}).get("global") or {}).items() if isinstance(res, dict)
            for k, v in res.items() if isinstance(v, (int, float, str, bool))]
    return Table("Global steps", ["operator", "figure", "value"], rows) if rows else None


def tables(data: ReportData) -> list[Table]:
    """The summary as tables, in page order: what the console and the page both show."""
    found = [summary_table(data), language_table(data), perplexity_table(data), drops_table(data),
             duplicates_table(data), throughput_table(data), global_steps_table(data)]
    return [t for t in found if t is not None]


def print_summary(data: ReportData, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    console = console or Console()
    for table in tables(data):
        t = RichTable(title=escape(table.title))
        for i, c in enumerate(table.columns):
            t.add_column(escape(c), justify="left" if i == 0 or c in ("reason", "operator", "figure", "cut-offs from")
                         else "right")
        for r in table.rows:
            t.add_row(*(escape(x) for x in r))
        console.print(t)

"""The report page: one self-contained HTML file (no external links) beside its PNG plots.

Each section shows its plot (or says why there is none) and the tables that belong to it. A small
script marks `<body data-images-ok="yes">` once every image has loaded, so a headless browser can
tell a page whose plots render from one with broken images.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from jobs.report.collect import ReportData
from jobs.report.tables import Table, tables

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #212529;
       background: #ffffff; max-width: 1150px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dee2e6; }
p.meta { color: #6c757d; font-size: 13px; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; }
th, td { border: 1px solid #dee2e6; padding: 3px 8px; text-align: right; }
td { max-width: 420px; overflow-wrap: anywhere; }
th { background: #f1f3f5; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #e9ecef; display: block; margin: 8px 0; }
.missing { color: #868e96; font-style: italic; }
"""

IMAGES_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-ok', ok === imgs.length ? 'yes' : 'no');
});
"""


@dataclass
class Section:
    key: str
    title: str
    alt: str


#: The plotted sections, in page order; `key` names both the plot and the tables' `section`.
SECTIONS = [
    Section("languages", "Documents per language", "documents per language"),
    Section("perplexity", "Perplexity per language", "perplexity distribution per language"),
    Section("drops", "Dropped documents", "documents dropped per operator and reason"),
    Section("duplicates", "Duplicate clusters", "duplicate cluster sizes"),
    Section("throughput", "Throughput per stage", "throughput per operator"),
]


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def missing_text(data: ReportData, key: str) -> str:
    """Why a section has no plot."""
    if key == "languages":
        return ("no documents in this output" if not data.documents.counts
                else "this output has no languages (a job without langid)")
    if key == "perplexity":
        return "this output has no perplexity (a job without the perplexity step)"
    if key == "drops":
        return "no document was dropped"
    if key == "duplicates":
        return ("no duplicates.parquet in this output (a job without MinHash dedup)" if data.duplicates is None
                else "no duplicate clusters")
    return "no stats.json with timings in this output"


def section_note(data: ReportData, key: str) -> str:
    """Where a section's figures come from, when that is worth saying."""
    if key == "perplexity" and data.perplexity.present:
        ppl = data.perplexity
        sources = {c.source for c in ppl.cutoffs.values()}
        parts = []
        if "model" in sources:
            parts.append(ppl.cutoffs_file)
        if "data" in sources:
            parts.append(f"percentiles {ppl.percentiles} of these documents (no model cut-offs)")
        return "cut-offs from " + " and ".join(parts) if parts else ""
    if key == "drops" and data.drops:
        return f"counted from {data.drops_source}"
    if key == "throughput":
        wall = ((data.stats or {}).get("job") or {}).get("wall_seconds")
        return f"wall time {wall:.1f} s" if isinstance(wall, (int, float)) else ""
    return ""


def render_html(data: ReportData, images: dict[str, str | None]) -> str:
    """The page; `images` maps a section key to the PNG's file name beside the page (None: no plot)."""
    job = (data.stats or {}).get("job") or {}
    all_tables = tables(data)
    name = data.out.rstrip("/").rsplit("/", 1)[-1]
    meta = html.escape(data.out)
    if job.get("name"):
        meta += " &middot; job " + html.escape(str(job["name"]))
    if job.get("inputs"):
        meta += " &middot; " + html.escape(str(job["inputs"])) + " input shards"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>decant report: {html.escape(name)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>decant report</h1><p class='meta'>{meta}</p>"]
    for t in all_tables:
        if t.section == "summary":
            parts.append(f"<h2>{html.escape(t.title)}</h2>" + html_table(t))
    for s in SECTIONS:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        note = section_note(data, s.key)
        if note:
            parts.append(f"<p class='meta'>{html.escape(note)}</p>")
        src = images.get(s.key)
        if src:
            parts.append(f"<img src='{html.escape(src)}' alt='{html.escape(s.alt)}'>")
        else:
            parts.append(f"<p class='missing'>{html.escape(missing_text(data, s.key))}</p>")
        parts.extend(html_table(t) for t in all_tables if t.section == s.key)
    for t in all_tables:
        if not t.section:
            parts.append(f"<h2>{html.escape(t.title)}</h2>" + html_table(t))
    parts.append(f"<script>{IMAGES_SCRIPT}</script></body></html>")
    return "\n".join(parts)

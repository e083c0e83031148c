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

OUT and the page may be local paths or fsspec URLs (`s3://bucket/out`, `memory://x`): collect
reads through the writers' output reader and fsspec, and the page and its plots are written the
same way.
"""
from __future__ import annotations

import os

from engine import io as eio
from jobs.report.collect import ReportData, collect
from jobs.report.page import render_html
from jobs.report.plots import PLOTS
from jobs.report.tables import print_summary, tables

__all__ = ["ReportData", "collect", "print_summary", "render_html", "tables", "write_report"]


def write_report(out: str | os.PathLike, html_path: str | os.PathLike | None = None, console=None,
                 quiet: bool = False) -> str:
    """Write OUT/report/index.html (or html_path) and its PNG plots beside it; print the summary unless quiet."""
    data = collect(str(out))
    page = str(html_path) if html_path else f"{str(out).rstrip('/')}/report/index.html"
    folder = page.rsplit("/", 1)[0] if "/" in page else "."
    images: dict[str, str | None] = {}
    for name, plot in PLOTS.items():
        png = plot(data)
        images[name] = None
        if png is not None:
            eio.write_bytes_atomic(png, f"{folder}/{name}.png")
            images[name] = f"{name}.png"
    eio.write_bytes_atomic(render_html(data, images).encode("utf-8"), page)
    if not quiet:
        print_summary(data, console)
    return page

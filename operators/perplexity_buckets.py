"""`perplexity: {cutoffs: auto}`: cut-offs taken on the job's own documents, as CCNet takes them on the crawl.

The perplexity step scores every document; this barrier then computes each language's percentiles
over the perplexity of all the job's documents and buckets every document with them:

    map      per batch, a histogram: (language, perplexity, count), partitioned by a hash of the language
    reduce   per partition, the exact percentiles of each of its languages (`percentiles_from_counts`:
             perplexities are rounded to 0.1, so a histogram is small, and adding counts is exact
             whatever the order, executor or worker count); languages with fewer than `min_documents`
             scored documents take the models' own cut-offs instead; the table of every language's
             cut-offs goes to every shard and, atomically, to OUT/cutoffs.json
    apply    bucket = head below the first cut-off, middle below the second, else tail; "none" for
             documents without a score or a language without cut-offs

OUT/cutoffs.json has the layout `decant lm cutoffs` writes, so a later job buckets new data the same
way with `cutoffs: OUT/cutoffs.json`. What the reduce returns (stats.json `global.perplexity_buckets`)
says, per language, how many documents it had and where its cut-offs came from.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from engine import io as eio
from engine.documents import set_column
from engine.operator import GlobalOperator, Result
from engine.shuffle import PARTITION, read_map_parts
from operators.columns import BUCKET, LANGUAGE, PERPLEXITY
from operators.perplexity import (
    BUCKETS,
    NO_MODEL,
    STORED_PERCENTILES,
    PerplexityParams,
    cutoffs_path,
    discover,
    percentiles_from_counts,
    read_cutoff_tables,
    resolve_models_dir,
    warn_on_mode_mismatch,
)

NAME = "perplexity_buckets"
COUNT = "count"
#: The name of the cut-offs file in the job's output.
CUTOFFS_FILE = "cutoffs.json"
#: Hash partitions of the histograms (a job has at most a few hundred languages).
PARTITIONS = 16
SOURCE_AUTO = "auto"
SOURCE_FALLBACK = "models"


class PerplexityBuckets(GlobalOperator):
    name = NAME
    inputs = (LANGUAGE, PERPLEXITY)
    outputs = (BUCKET,)
    Params = PerplexityParams

    def num_partitions(self) -> int:
        return PARTITIONS

    def setup(self) -> None:
        p = self.params
        self.models_dir = resolve_models_dir(p.models)
        languages = set(discover(self.models_dir))
        if p.languages is not None:
            languages &= set(p.languages)
        self.fallback_path = cutoffs_path(None, self.models_dir)
        self.fallback: dict[str, dict[int, float]] = {}
        if eio.exists(str(self.fallback_path)):
            tables = read_cutoff_tables(self.fallback_path)
            self.fallback = {k: v for k, v in tables.items()
                             if k in languages and all(q in v for q in p.percentiles)}
            warn_on_mode_mismatch(self.fallback_path, p.line_mode)

    # ------------------------------------------------------------------ map
    def map(self, batch: pa.RecordBatch) -> pa.Table | None:
        t = pa.table({LANGUAGE: batch.column(LANGUAGE).cast(pa.string()),
                      PERPLEXITY: batch.column(PERPLEXITY).cast(pa.float64())})
        t = t.filter(pc.and_(pc.is_valid(t[LANGUAGE]), pc.is_valid(t[PERPLEXITY])))
        if t.num_rows == 0:
            return None
        hist = t.group_by([LANGUAGE, PERPLEXITY]).aggregate([([], "count_all")])
        hist = hist.rename_columns([COUNT if c == "count_all" else c for c in hist.column_names])
        part = np.array([language_partition(lang) for lang in hist.column(LANGUAGE).to_pylist()], np.int32)
        return hist.select([LANGUAGE, PERPLEXITY, COUNT]).append_column(PARTITION, pa.array(part))

    # ------------------------------------------------------------------ reduce
    def reduce(self, ctx) -> dict:
        p = self.params
        wanted = sorted(set(p.percentiles) | set(STORED_PERCENTILES))
        results = ctx.parallel(partition_percentiles,
                               [(ctx.map_parts(i), wanted) for i in range(ctx.num_partitions)])
        measured: dict[str, tuple[int, dict[int, float]]] = {}
        for r in results:
            measured.update(r)
        table: dict[str, dict[int, float]] = {}
        meta: dict[str, dict] = {}
        summary = {"auto": {}, "fallback": {}, "no_cutoffs": {}}
        for lang in sorted(set(measured) | set(self.fallback)):
            n, pcts = measured.get(lang, (0, {}))
            if n >= p.min_documents:
                table[lang] = {q: round(v, 1) for q, v in pcts.items()}
                meta[lang] = {"documents": n, "source": SOURCE_AUTO, "line_mode": p.line_mode,
                              "median": table[lang].get(50)}
                summary["auto"][lang] = n
            elif lang in self.fallback:
                table[lang] = dict(self.fallback[lang])
                meta[lang] = {"documents": n, "source": SOURCE_FALLBACK, "file": str(self.fallback_path),
                              "line_mode": p.line_mode}
                if n:
                    summary["fallback"][lang] = n
            else:
                summary["no_cutoffs"][lang] = n
        path = f"{ctx.output_dir.rstrip('/')}/{CUTOFFS_FILE}"
        doc = cutoffs_document(table, meta, p.min_documents)
        eio.write_bytes_atomic((json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), path)
        langs = sorted(table)
        ctx.write_apply_all(pa.table({
            LANGUAGE: pa.array(langs, pa.string()),
            "low": pa.array([table[lg][p.percentiles[0]] for lg in langs], pa.float64()),
            "high": pa.array([table[lg][p.percentiles[1]] for lg in langs], pa.float64()),
        }))
        return {"path": path, "min_documents": p.min_documents, "percentiles": list(p.percentiles),
                "cutoffs": {lg: [table[lg][p.percentiles[0]], table[lg][p.percentiles[1]]] for lg in langs
                            if lg in summary["auto"] or lg in summary["fallback"]},
                **summary}

    # ------------------------------------------------------------------ apply
    def apply(self, batch: pa.RecordBatch, table: pa.Table | None) -> Result:
        n = batch.num_rows
        buckets = np.full(n, NO_MODEL, dtype=object)
        if table is not None and table.num_rows:
            idx = pc.index_in(batch.column(LANGUAGE).cast(pa.string()), value_set=table.column(LANGUAGE))
            idx = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False)
            ppl = pc.fill_null(batch.column(PERPLEXITY).cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            low, high = table.column("low").to_numpy(), table.column("high").to_numpy()
            ok = (idx >= 0) & ~np.isnan(ppl)
            i = idx[ok]
            v = ppl[ok]
            buckets[ok] = np.where(v < low[i], BUCKETS[0], np.where(v < high[i], BUCKETS[1], BUCKETS[2]))
        return Result(set_column(batch, BUCKET, pa.array(buckets.tolist(), pa.string())))


def language_partition(language: str) -> int:
    return int(xxhash.xxh3_64_intdigest(language.encode("utf-8", "surrogatepass")) % PARTITIONS)


def partition_percentiles(item: tuple[list[str], list[int]]) -> dict[str, tuple[int, dict[int, float]]]:
    """{language: (documents, {percentile: perplexity})} over the histograms of one partition."""
    files, percentiles = item
    t = read_map_parts(files, [LANGUAGE, PERPLEXITY, COUNT])
    if t is None:
        return {}
    t = t.group_by([LANGUAGE, PERPLEXITY]).aggregate([(COUNT, "sum")])
    out = {}
    langs = t.column(LANGUAGE).to_numpy(zero_copy_only=False)
    values = t.column(PERPLEXITY).to_numpy()
    counts = t.column(f"{COUNT}_sum").to_numpy()
    for lang in sorted(set(langs)):
        m = langs == lang
        out[lang] = (int(counts[m].sum()), percentiles_from_counts(values[m], counts[m], percentiles))
    return out


def cutoffs_document(table: dict[str, dict[int, float]], meta: dict[str, dict], min_documents: int) -> dict:
    """The JSON of a cut-offs file: {"_meta": ..., lang: {"30": x, ...}}, as `decant lm cutoffs` writes."""
    return {"_meta": {"format": "{lang: {percentile: perplexity}}; bucket head < p30 <= middle < p60 <= tail",
                      "written_by": f"perplexity cutoffs: auto (languages with >= {min_documents} documents; "
                                    "the others keep the models' cut-offs)",
                      "languages": meta},
            **{lang: {str(q): v for q, v in sorted(t.items())} for lang, t in sorted(table.items())}}

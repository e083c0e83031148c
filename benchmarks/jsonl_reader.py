"""jsonl_reader: the JSONL reader's speed, the Python path against the pyarrow path, in one run.

Input: 40,000 documents of about 2 KB (real sentences of 12 languages from lingua and WikiText),
written twice: as `decant dedup` reads them ({id, text, url}) and in CCNet's layout (raw_content,
digest instead of an id, date_download, numeric fields). Each file is read whole by
`JsonlReader.read` with batches of 256, once by the Python path (the private switch
`JsonlReader._arrow = False`) and once by the default path (pyarrow's JSON parser where it reads the
lines exactly as Python would), each the best of two; per core means per CPU-second of this one
process. The batches of the two paths are compared (schemas and values): `identical` must be
true. `split` is the cost of `JsonlReader.split` into 8 MB ranges (the scan the engine runs before
scheduling the ranges of a big file), per CPU-second.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

from benchmarks.corpora.cache import cached
from benchmarks.corpora.text_pools import Pools

DESCRIPTION = "JSONL reader: docs/s and MB/s per core, Python path vs pyarrow path, 40k 2 KB documents"
QUICK = True

DOCS = 40_000
BATCH = 256
LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ru", "tr", "fi"]


def _build(folder: Path, docs: int, seed: int) -> None:
    rng = random.Random(seed)
    pools = Pools(seed)
    with open(folder / "docs.jsonl", "w", encoding="utf-8") as plain, \
            open(folder / "ccnet.jsonl", "w", encoding="utf-8") as cc:
        for i in range(docs):
            lang = LANGUAGES[i % len(LANGUAGES)]
            pool = pools.get(lang)
            paras, size = [], 0
            while size < 2000:
                p = " ".join(pool.take(rng.randint(2, 5)))
                paras.append(p)
                size += len(p.encode()) + 1
            text = "\n".join(paras)
            plain.write(json.dumps({"id": f"doc-{i:06d}", "text": text, "url": f"https://example.org/{lang}/{i}"},
                                   ensure_ascii=False) + "\n")
            cc.write(json.dumps({
                "url": f"https://example.org/{lang}/{i}", "date_download": "2019-03-18T00:00:00Z",
                "digest": f"sha1:{rng.getrandbits(128):032x}", "length": len(text), "nlines": len(paras),
                "source_domain": "example.org", "title": text[:40], "raw_content": text, "language": lang,
                "language_score": round(rng.uniform(0.5, 1.0), 2), "perplexity": round(rng.uniform(50, 900), 1),
                "bucket": rng.choice(["head", "middle", "tail"])}) + "\n")


def corpus(docs: int = DOCS, seed: int = 3) -> Path:
    """The folder (cached) with docs.jsonl and ccnet.jsonl, `docs` documents each."""
    return cached("jsonl-reader", _build, docs=docs, seed=seed)


def _read(path: Path, arrow: bool) -> tuple[float, list, dict]:
    """(CPU seconds, batches, stats) of one whole read."""
    from operators.readers import JsonlReader

    reader = JsonlReader()
    reader._arrow = arrow
    t = time.process_time()
    batches = list(reader.read(str(path), BATCH))
    return time.process_time() - t, batches, reader.stats


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x.schema == y.schema and x.equals(y) for x, y in zip(a, b))


def run(quick: bool = True) -> dict:
    from operators.readers import JsonlReader

    folder = corpus()
    rows, figures = [], {}
    for name in ("docs.jsonl", "ccnet.jsonl"):
        path = folder / name
        mb = path.stat().st_size / 1e6
        cpu: dict[bool, float] = {}
        out: dict[bool, tuple] = {}
        for _ in range(2):
            for arrow in (False, True):
                s, batches, stats = _read(path, arrow)
                cpu[arrow] = min(cpu.get(arrow, s), s)
                out[arrow] = (batches, stats)
        n = sum(b.num_rows for b in out[True][0])
        identical = _same(out[False][0], out[True][0]) and out[False][1] == out[True][1]
        t = time.process_time()
        ranges = JsonlReader().split(str(path), 8 << 20)
        split_s = time.process_time() - t
        shape = name.split(".")[0]
        for arrow in (False, True):
            rows.append({"file": name, "path": "pyarrow" if arrow else "python", "docs": n, "MB": round(mb, 1),
                         "cpu_s": round(cpu[arrow], 3), "docs_per_s_per_core": round(n / cpu[arrow]),
                         "MB_per_s_per_core": round(mb / cpu[arrow], 1), "identical": identical})
        figures[f"{shape}_python_docs_per_s"] = round(n / cpu[False])
        figures[f"{shape}_pyarrow_docs_per_s"] = round(n / cpu[True])
        figures[f"{shape}_python_MB_per_s"] = round(mb / cpu[False], 1)
        figures[f"{shape}_pyarrow_MB_per_s"] = round(mb / cpu[True], 1)
        figures[f"{shape}_pyarrow_speedup"] = round(cpu[False] / cpu[True], 2)
        figures[f"{shape}_identical"] = identical
        figures[f"{shape}_split_MB_per_s"] = round(mb / max(split_s, 1e-6))
        figures[f"{shape}_split_ranges_8MB"] = len(ranges or [])
    return {"figures": figures, "rows": rows,
            "inputs": {"docs": DOCS, "batch_size": BATCH, "folder": str(folder),
                       "files": {n: (folder / n).stat().st_size for n in ("docs.jsonl", "ccnet.jsonl")}},
            "notes": ["per core: documents (MB) per CPU-second of this process, best of two reads per path",
                      "identical: the two paths gave the same batches (schema and values) and stats"]}

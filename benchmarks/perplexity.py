"""Perplexity (CCNet SentencePiece + KenLM): speed, fidelity to CCNet, and whether it ranks text sensibly.

Figures:
- docs/s on one core through the operator (bundled English model, real article texts);
- Spearman rank correlation between our perplexity and CCNet's own on the 20 real CCNet output
  documents in shared/data/ccnet-reference (all in CCNet's "head" bucket, so a narrow range);
- the median perplexity of fluent text (gold article bodies of the extraction benchmark pages),
  the same lines with words shuffled, and the boilerplate (navigation, footer, cookie/menu blocks)
  of the same HTML pages; plus the share of documents whose fluent text beats its shuffled copy;
- per language with a bundled model: held-out bits per character (tokenizer-independent, so models
  with different vocabularies compare) and median document perplexity on the held-out slices of
  operators/lm_bundled.py, and the share of held-out sentences scoring below the same words shuffled;
- per language of the real web pages in shared/data (WARC pages and the extraction benchmark's, main
  text, language by decant): how they spread over head/middle/tail with the bundled cut-offs and
  with `cutoffs: auto` (a real job; `min_documents` lowered to 10 for these few pages).
"""
from __future__ import annotations

import gzip
import json
import random
import re
import time

import numpy as np

from benchmarks.corpora.real_pages import extraction_benchmark_dir, ground_truth
from benchmarks.corpora.shared_data import shared_data

DESCRIPTION = "perplexity: docs/s per core, Spearman vs CCNet's own perplexity, fluent < shuffled < boilerplate"
QUICK = True

BOILERPLATE_XPATH = (
    "//nav | //footer | //header | //*[@role='navigation'] | //*[@id][re:test(@id, '{pat}', 'i')]"
    " | //*[@class][re:test(@class, '{pat}', 'i')]"
)
BOILERPLATE_PAT = r"cookie|consent|gdpr|menu|navbar|breadcrumb|footer|share|social|subscribe|newsletter"


def ccnet_reference() -> list[dict]:
    docs = []
    for f in sorted((shared_data() / "ccnet-reference").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                meta = r.get("metadata") or {}
                docs.append({"text": r.get("raw_content") or r.get("text"),
                             "perplexity": r.get("perplexity", meta.get("perplexity")),
                             "language": r.get("language", meta.get("language")),
                             "bucket": r.get("bucket", meta.get("bucket"))})
    return docs


def _is_english(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return len(words) >= 50 and sum(w in {"the", "and", "of", "to", "is"} for w in words) / len(words) > 0.06


def article_pages(limit: int | None = None) -> list[dict]:
    """English pages of the extraction benchmark: gold article text + boilerplate lines of the HTML."""
    import lxml.html

    root = extraction_benchmark_dir()
    gold = ground_truth()
    xpath = BOILERPLATE_XPATH.format(pat=BOILERPLATE_PAT)
    ns = {"re": "http://exslt.org/regular-expressions"}
    pages = []
    for key in sorted(gold):
        body = gold[key].get("articleBody") or ""
        if not _is_english(body):
            continue
        path = root / "html" / f"{key}.html.gz"
        if not path.is_file():
            continue
        try:
            with gzip.open(path) as fh:
                tree = lxml.html.fromstring(fh.read())
        except Exception:  # noqa: BLE001, S112 - an unparsable page is skipped
            continue
        article_lines = {ln.strip() for ln in body.split("\n") if ln.strip()}
        seen, boiler = set(), []
        for el in tree.xpath(xpath, namespaces=ns):
            for t in el.itertext():
                t = " ".join(t.split())
                # Boilerplate: text of those blocks that is not part of the gold article.
                if len(t) < 2 or t in seen or t in article_lines or any(t in a for a in article_lines):
                    continue
                seen.add(t)
                boiler.append(t)
        fluent = [ln.strip() for ln in body.split("\n") if len(ln.split()) >= 5]
        if len(boiler) >= 5 and len(fluent) >= 3:
            pages.append({"fluent": fluent, "boilerplate": boiler})
        if limit and len(pages) >= limit:
            break
    return pages


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties), numpy only."""
    def ranks(x):
        x = np.asarray(x, dtype=float)
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=float)
        for v in np.unique(x):  # ties share their mean rank
            m = x == v
            r[m] = r[m].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def shuffle_words(line: str, rng: random.Random) -> str:
    words = line.split()
    rng.shuffle(words)
    return " ".join(words)


def shuffled_copy(text: str, lang: str, rng: random.Random) -> str:
    """The same words in random order (ICU words where the language has no spaces)."""
    from operators.filters.quality.segmentation import SEGMENTED_LANGUAGES, segment

    if lang in SEGMENTED_LANGUAGES:
        words = segment([text], [lang])[0].to_pylist()
        rng.shuffle(words)
        return "".join(words)
    return shuffle_words(text, rng)


def heldout_figures(op, langs: list[str] | None = None) -> list[dict]:
    """Per language: held-out bits per character (by source), median document perplexity and the
    fluent < shuffled share, for the models `op` (a set-up Perplexity operator) has."""
    import math

    from operators.lm_bundled import language_text
    from operators.perplexity import normalize

    out = []
    rng = random.Random(0)
    for lang in langs or sorted(op.available):
        try:
            text = language_text(shared_data(), lang)
        except FileNotFoundError:
            continue
        m = op.model(lang)
        row: dict = {"lang": lang}
        for src, lines in text.held_out.items():
            norm = [normalize(ln) for ln in lines]
            logp, _ = m.score_lines(norm)
            row[f"bpc_{src}"] = round(-logp * math.log2(10) / sum(len(x) + 1 for x in norm), 3)
        docs = text.held_out_documents()
        row["docs"] = len(docs)
        row["median ppl"] = float(np.median([m.perplexity(d) for d in docs]))
        held = text.held_out["lingua"]
        fl = np.asarray([m.perplexity(x) for x in held])
        sh = np.asarray([m.perplexity(shuffled_copy(x, lang, rng)) for x in held])
        row["fluent<shuffled"] = round(float(np.mean(fl < sh)), 3)
        out.append(row)
    return out


def web_bucket_spread() -> dict[str, dict]:
    """Per language of the real pages: docs and head/middle/tail shares with bundled and auto cut-offs."""
    import collections
    import tempfile

    from benchmarks.corpora.real_pages import page_texts
    from jobs.runjob import run_job
    from operators.writers import read_documents

    seen: set[str] = set()
    texts = [t for t in page_texts() if not (t[3] in seen or seen.add(t[3]))]  # exact repeats once
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="decant-bench-ppl-") as tmp:
        src = f"{tmp}/pages.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for i, (url, _date, _lang, text) in enumerate(texts):
                f.write(json.dumps({"id": f"page-{i}", "url": url, "text": text}, ensure_ascii=False) + "\n")
        counts = {}
        for mode, params in (("bundled", {}), ("auto", {"cutoffs": "auto", "min_documents": 10})):
            spec = {"pipeline": [{"langid": {}}, {"perplexity": params}], "output": {"partition_by": []}}
            run_job(spec, inputs=[src], out=f"{tmp}/{mode}", executor="local", workers=2)
            t = read_documents(f"{tmp}/{mode}")
            counts[mode] = collections.Counter(zip(t.column("language").to_pylist(), t.column("bucket").to_pylist()))
    for lang in sorted({lg for lg, _ in counts["bundled"]}):
        n = sum(c for (lg, _), c in counts["bundled"].items() if lg == lang)
        row = {"docs": n}
        for mode in ("bundled", "auto"):
            share = [round(100 * counts[mode][(lang, b)] / n) for b in ("head", "middle", "tail")]
            row[f"{mode} h/m/t %"] = "/".join(map(str, share))
        out[lang] = row
    return out


def run(quick: bool = True) -> dict:
    from engine.documents import make_batch
    from operators.perplexity import Perplexity

    op = Perplexity(models="bundled", tokenizer="sentencepiece")
    op.ensure_setup()
    en = op.model("en")
    rows, notes = [], []

    # --- fidelity to CCNet ---------------------------------------------------------------
    ref = ccnet_reference()
    ccnet_pp = [d["perplexity"] for d in ref]
    fig: dict = {}
    for mode in ("split", "ccnet"):
        ours = [en.perplexity(d["text"], mode) for d in ref]
        rho = spearman(ours, ccnet_pp)
        fig[f"spearman_vs_ccnet_{mode}"] = round(float(rho), 3)
        buckets = [op.bucket("en", p) for p in ours]
        fig[f"ccnet_head_docs_in_our_head_{mode}"] = round(buckets.count("head") / len(ref), 3)
        fig[f"ccnet_head_docs_in_our_head_or_middle_{mode}"] = round(
            (buckets.count("head") + buckets.count("middle")) / len(ref), 3)
        rows.append({"set": f"ccnet-reference ({mode})", "docs": len(ref),
                     "median_ours": float(np.median(ours)), "median_ccnet": float(np.median(ccnet_pp))})

    # --- fluent vs shuffled vs boilerplate on real pages ----------------------------------
    pages = article_pages(limit=40 if quick else None)
    rng = random.Random(0)
    fluent = [en.perplexity("\n".join(p["fluent"])) for p in pages]
    shuffled = [en.perplexity("\n".join(shuffle_words(ln, rng) for ln in p["fluent"])) for p in pages]
    boiler = [en.perplexity("\n".join(p["boilerplate"])) for p in pages]
    f, s, b = map(np.asarray, (fluent, shuffled, boiler))
    for name, arr in (("fluent article text", f), ("same lines, words shuffled", s), ("boilerplate lines", b)):
        rows.append({"set": name, "docs": len(arr), "median_ours": float(np.median(arr)),
                     "mean_ours": float(np.mean(arr))})
    fig.update({
        "pages": len(pages),
        "fluent_median": float(np.median(f)), "shuffled_median": float(np.median(s)),
        "boilerplate_median": float(np.median(b)),
        "fluent_below_shuffled_share": round(float(np.mean(f < s)), 3),
        "fluent_below_boilerplate_share": round(float(np.mean(f < b)), 3),
    })

    # --- every bundled language: held-out text ------------------------------------------------
    per_lang = heldout_figures(op)
    for r in per_lang:
        rows.append({"set": f"{r['lang']}: held-out", **{k: v for k, v in r.items() if k != "lang"}})
    fig["languages"] = len(per_lang)
    fig["min_fluent_below_shuffled_share_over_languages"] = (
        round(min(r["fluent<shuffled"] for r in per_lang), 3) if per_lang else None)
    fig["median_bits_per_char_lingua"] = round(float(np.median([r["bpc_lingua"] for r in per_lang])), 3)

    # --- real web pages: buckets with the bundled and with auto cut-offs -----------------------
    spread = web_bucket_spread()
    for lang, r in sorted(spread.items(), key=lambda kv: -kv[1]["docs"]):
        rows.append({"set": f"{lang}: web pages", "docs": r["docs"], **{k: v for k, v in r.items() if k != "docs"}})
    for lang in ("en", "ja", "zh"):
        if lang in spread:
            fig[f"web_{lang}_bundled_head_middle_tail"] = spread[lang]["bundled h/m/t %"]
            fig[f"web_{lang}_auto_head_middle_tail"] = spread[lang]["auto h/m/t %"]

    # --- speed: the operator on one core ----------------------------------------------------
    texts = ["\n".join(p["fluent"]) for p in pages] + [d["text"] for d in ref]
    reps = 3 if quick else 10
    texts = (texts * reps)
    batch = make_batch({"text": texts, "language": ["en"] * len(texts)})
    op.process(make_batch({"text": texts[:5], "language": ["en"] * 5}))  # warm up
    # CPU seconds of this process (the machine is shared); best of interleaved rounds, against the
    # per-document reference (`LanguageModel.perplexity`: per-line normalisation and pieces as strings)
    en = op.model("en")
    dt = dt_ref = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        out = op.process(batch)
        dt = min(dt, time.process_time() - c0)
        c0 = time.process_time()
        ref_values = [en.perplexity(t) for t in texts]
        dt_ref = min(dt_ref, time.process_time() - c0)
    assert out.batch.column("perplexity").to_pylist() == ref_values
    kb = sum(len(t.encode()) for t in texts) / 1024
    fig["docs_per_s_per_core"] = round(len(texts) / dt, 1)
    fig["per_document_reference_docs_per_s_per_core"] = round(len(texts) / dt_ref, 1)
    fig["operator_vs_per_document_reference"] = round(dt_ref / dt, 2)
    fig["kb_per_s_per_core"] = round(kb / dt, 1)
    fig["mean_doc_kb"] = round(kb / len(texts), 2)
    assert out.batch.num_rows == len(texts)

    notes += [
        ("model: bundled models/en.arpa.bin + en.sp.model (KenLM 5-gram, pruned 0 1 1 1 2, q8, SentencePiece "
         "unigram 8k) trained on WikiText-2 test+valid (~300k words); CCNet's en model is trained on all of "
         "English Wikipedia, so agreement is limited by model size as much as by the method"),
        ("the 20 CCNet documents are all in CCNet's head bucket (perplexity 168-338), a narrow range, so the "
         "rank correlation on them is small-sample and range-restricted; split = per-line scoring (CCNet's DocLM "
         "formula), ccnet = whole document as one line (what CCNet's mine.py does: its normalisation removes "
         "the newlines before SentencePiece)"),
        ("fluent = gold article bodies (scrapinghub article-extraction-benchmark, English pages); shuffled = the "
         "same lines with their words shuffled; boilerplate = text of nav/header/footer/menu/cookie/share blocks "
         "of the same HTML pages that is not in the article"),
        ("per-language rows: the held-out slices of operators/lm_bundled.py (last 25% of lingua, last 10% of "
         "ud); bpc = bits per character of the normalised text (comparable across vocabularies, unlike the "
         "per-piece perplexity the buckets use); median ppl = the operator's perplexity of held-out documents "
         "of 4 sentences; fluent<shuffled = held-out lingua sentences below the same words shuffled (ICU "
         "words for languages written without spaces)"),
        ("web pages: main text of every real HTML page in shared/data (exact repeats once), language by lid.176; bundled = "
         "models/cutoffs.json (held-out sentences; en: article pages); auto = a decant job with "
         "perplexity: {cutoffs: auto, min_documents: 10}: languages with fewer pages keep the bundled ones "
         "(auto h/m/t is ~30/30/40 by construction on the documents it was taken on)"),
    ]
    return {"figures": fig, "rows": rows,
            "inputs": {"ccnet_reference_docs": len(ref), "pages": len(pages), "speed_docs": len(texts)},
            "notes": notes}


if __name__ == "__main__":
    from benchmarks.harness import print_result

    print_result("perplexity", run(quick=True))

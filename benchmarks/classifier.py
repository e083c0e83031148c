"""Model-based signals: speed of the `classifier` and `importance` operators, and what the bundled models separate.

Figures:
- docs/s per core (CPU seconds of this process) of each operator on real English documents
  (held-out article texts and boilerplate), beside two peers measured in the same run: the
  `langid` operator (fastText lid.176, the same library on the same documents) for the classifier,
  and a per-document Python implementation of the same importance formula (what RedPajama-V2's
  signal code does per document) for the vectorised importance operator;
- on the held-out pages of the article-extraction benchmark (benchmarks.corpora.signal_corpus: sites
  never seen in training), the AUC of each bundled model separating the page's article text from its
  boilerplate lines and from the same article lines with their words shuffled.
"""
from __future__ import annotations

import json
import time

import numpy as np

DESCRIPTION = ("classifier + importance: docs/s per core vs langid / a per-document reference; AUC of the bundled "
               "models, article text vs boilerplate and vs shuffled words (held-out pages)")
QUICK = True


def python_features(text: str, buckets: int) -> list[int]:
    """Bucket ids of a document's unigrams then bigrams, one n-gram at a time in plain Python."""
    import xxhash

    from operators.dedup.minhash import normalize
    from operators.importance import BIGRAM_BASE

    mask = (1 << 64) - 1
    base = int(BIGRAM_BASE)

    def fmix(h: int) -> int:
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & mask
        h ^= h >> 33
        h = (h * 0xC4CEB93FE53C4E63) & mask
        return h ^ (h >> 33)

    hashes = [xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in normalize(text).split()]
    return [h % buckets for h in hashes] + [fmix((a * base + b) & mask) % buckets for a, b in zip(hashes, hashes[1:])]


def python_reference_weight(model, text: str) -> float:
    """The importance formula for one document: sum of log p_target - log p_source over its n-grams."""
    lt, ls = model.log_p_target, model.log_p_source
    return float(sum(float(lt[f]) - float(ls[f]) for f in python_features(text, model.buckets)))


def _cpu_rate(fn, batches) -> float:
    """Documents per CPU second of this process for fn over the batches."""
    docs = sum(b.num_rows for b in batches)
    c0 = time.process_time()
    for b in batches:
        fn(b)
    return docs / max(time.process_time() - c0, 1e-9)


def run(quick: bool = True) -> dict:
    from benchmarks.corpora.signal_corpus import heldout_pages
    from engine.documents import TEXT, make_batch
    from operators.classifier import Classifier, metadata_path
    from operators.importance import Importance
    from operators.langid import LangId
    from operators.signal_training import roc_auc

    pages = heldout_pages()
    classifier, importance, langid = Classifier(), Importance(), LangId()
    for op in (classifier, importance, langid):
        op.ensure_setup()
    rows, fig = [], {"heldout_pages": len(pages)}

    # --- separation on held-out pages --------------------------------------------------------
    kinds = ("article", "boilerplate", "shuffled")
    batches = {k: make_batch({TEXT: [p[k] for p in pages]}) for k in kinds}
    for op in (classifier, importance):
        scores = {k: np.asarray(op.process(b).batch.column(op.column).to_numpy(zero_copy_only=False), dtype=float)
                  for k, b in batches.items()}
        for other in ("boilerplate", "shuffled"):
            fig[f"{op.column}_auc_article_vs_{other}"] = round(roc_auc(scores["article"], scores[other]), 4)
        rows.append({"signal": op.column, **{f"median {k}": float(np.median(v)) for k, v in scores.items()},
                     "AUC vs boilerplate": fig[f"{op.column}_auc_article_vs_boilerplate"],
                     "AUC vs shuffled": fig[f"{op.column}_auc_article_vs_shuffled"]})
    per_word = {k: importance.model.weights([p[k] for p in pages], per_word=True) for k in kinds}
    for other in ("boilerplate", "shuffled"):
        fig[f"{importance.column}_per_word_auc_article_vs_{other}"] = round(
            roc_auc(per_word["article"], per_word[other]), 4)
    rows.append({"signal": f"{importance.column} (per_word)",
                 **{f"median {k}": float(np.median(v)) for k, v in per_word.items()},
                 "AUC vs boilerplate": fig[f"{importance.column}_per_word_auc_article_vs_boilerplate"],
                 "AUC vs shuffled": fig[f"{importance.column}_per_word_auc_article_vs_shuffled"]})
    for op in (classifier, importance):  # the figures taken at training time on its own held-out split
        meta_path = metadata_path(op.model_path)
        if meta_path.is_file():
            held = json.loads(meta_path.read_text()).get("heldout", {})
            fig[f"{op.column}_training_heldout_auc"] = held.get("auc")

    # --- speed ----------------------------------------------------------------------------------
    texts = [p[k] for p in pages for k in ("article", "boilerplate")]
    n = 2_000 if quick else 20_000
    docs = [texts[i % len(texts)] for i in range(n)]
    speed_batches = [make_batch({TEXT: docs[i:i + 256]}) for i in range(0, n, 256)]
    mean_kb = float(np.mean([len(t.encode()) for t in docs]) / 1024)
    rates = {
        "classifier": _cpu_rate(classifier.process, speed_batches),
        "langid (peer: fastText lid.176)": _cpu_rate(langid.process, speed_batches),
        "importance": _cpu_rate(importance.process, speed_batches),
    }
    ref_docs = docs[: max(200, n // 10)]
    c0 = time.process_time()
    for t in ref_docs:
        python_reference_weight(importance.model, t)
    rates["importance, per-document Python (peer)"] = len(ref_docs) / max(time.process_time() - c0, 1e-9)
    for name, r in rates.items():
        rows.append({"signal": name, "docs/s per core": round(r, 1), "mean doc KB": round(mean_kb, 2)})
    fig.update({
        "classifier_docs_per_s_per_core": round(rates["classifier"], 1),
        "classifier_vs_langid": round(rates["classifier"] / rates["langid (peer: fastText lid.176)"], 2),
        "importance_docs_per_s_per_core": round(rates["importance"], 1),
        "importance_vs_python_reference": round(
            rates["importance"] / rates["importance, per-document Python (peer)"], 1),
        "mean_doc_kb": round(mean_kb, 2),
    })
    notes = [
        "AUC: probability that a page's article text outscores a page's boilerplate (or shuffled) text; 0.5 is chance.",
        "Held-out pages: the article-extraction benchmark pages of half of its sites "
        "(benchmarks/corpora/signal_corpus.py); no page of those sites is in training.",
        "Shuffled text has the article's own words: a bag-of-words signal can only tell it apart through bigrams.",
    ]
    return {"figures": fig, "rows": rows, "notes": notes,
            "inputs": {"heldout_pages": len(pages), "speed_docs": n,
                       "classifier_model": str(classifier.model_path), "importance_model": str(importance.model_path)}}

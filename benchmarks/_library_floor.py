"""The floor of the default job on a WET corpus: the CPU of its library calls alone.

What no Python or numpy work around the models can go below at identical output: fastText lid.176
`predict` on every document the reader gives (langid), the bundled classifier's `predict` on the
English documents it scores, and per language SentencePiece `encode` of the normalised lines plus
one KenLM `score` per line (perplexity), each called in one batch per language over the documents
the job kept (as many as reach those steps when dedup removes nothing after them). Normalisation and
everything else is left out. CPU seconds (process time) of the calls, per reader document.
"""
from __future__ import annotations

import time
from typing import Any


def library_floor(inputs: list[str], output: str) -> dict[str, Any]:
    """CPU seconds of the library calls over the job's documents (`inputs`: the WET shards, `output`:
    the job's output folder), and the documents per second per core they allow."""
    import pyarrow as pa

    import operators.readers  # noqa: F401  (registers the readers)
    from engine.reader import open_reader
    from operators.classifier import prepare
    from operators.langid import default_model_path, load_model
    from operators.langid import normalize as lid_normalize
    from operators.perplexity import BUNDLED_MODELS, discover, encode_pieces, get_model, normalize_documents
    from operators.writers import read_documents

    texts = [t for p in inputs for b in open_reader(p, "wet").read(p, 256) for t in b.column("text").to_pylist()]
    docs = read_documents(output)
    clock = time.process_time
    lid = load_model(default_model_path())
    lid_texts = lid_normalize(pa.array(texts, pa.string())).to_pylist()
    t = clock()
    lid.predict(lid_texts, k=1, threshold=0.0, on_unicode_error="replace")
    langid_s = clock() - t

    langs = docs.column("language").to_pylist()
    kept = docs.column("text").to_pylist()
    clf = load_model(str(BUNDLED_MODELS / "signals" / "wikipedia.ftz"))
    en = prepare(pa.array([x for x, lang in zip(kept, langs) if lang == "en"], pa.string()))
    t = clock()
    clf.predict(en, k=-1, threshold=0.0, on_unicode_error="replace")
    classifier_s = clock() - t

    by_lang: dict[str, list[str]] = {}
    for x, lang in zip(kept, langs):
        by_lang.setdefault(lang, []).append(x)
    models = discover(BUNDLED_MODELS)
    sp_s = lm_s = 0.0
    for lang, group in by_lang.items():
        if lang not in models:
            continue
        m = get_model(models[lang]["lm"], models[lang]["sp"], "sentencepiece")
        lines, _ = normalize_documents(group)
        t = clock()
        pieces = encode_pieces(m.sp, lines)
        sp_s += clock() - t
        sentences = [b" ".join(p) for p in pieces]
        t = clock()
        list(map(m.lm.score, sentences))
        lm_s += clock() - t
    total = langid_s + classifier_s + sp_s + lm_s
    n = len(texts)
    return {"documents": n, "documents_kept": docs.num_rows,
            "langid_fasttext_cpu_s": round(langid_s, 3), "classifier_fasttext_cpu_s": round(classifier_s, 3),
            "perplexity_sentencepiece_cpu_s": round(sp_s, 3), "perplexity_kenlm_cpu_s": round(lm_s, 3),
            "cpu_s": round(total, 3), "cpu_ms_per_doc": round(1000 * total / n, 3) if n else None,
            "docs_per_s_per_core": round(n / total, 1) if total else None}

"""quality: docs/s per core of the Gopher / C4 / FineWeb rules on ~2 KB real-text documents.

Corpus: `docs_from_text` documents (real WikiText-2 and lingua sentences in paragraphs; English,
plus a multilingual set with a `language` column), with a share of pages made repetitive (a
paragraph repeated, boilerplate lines) so the repetition rules have work to do.

Measured in one process (per core), batches of 1,000: each rule set alone and the default job's
setting (gopher + c4 without terminal-punctuation line removal + fineweb). Reference in the same
run: a plain per-document Python implementation of the Gopher repetition and quality rules, written
the way datatrove's filters are (Counter / set loops per document, whitespace words), on the same
documents; the ratio is operator speed over reference speed for the same two rule groups.

Per language (every language of operators/lm_bundled.py, i.e. every bundled model's): the share of
documents the default job's rules drop, with the bundled per-language table, for
- fluent documents: 8 held-out real sentences (lingua's last 25%, UD's last 10%: text the table
  was not derived from), drawn at random, in paragraphs of 2 sentences;
- shuffled: the same documents with the words of each line shuffled (ICU words where the language
  has no spaces);
- boilerplate-like: the same words, punctuation stripped, as lines of 1-3 words (menus, tag lists);
and the rules the table skips for the language, counted.
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter

DESCRIPTION = "quality filter (Gopher/C4/FineWeb): docs/s per core vs a per-document Python reference"
QUICK = True

#: CPU seconds of this process (all its threads): rates stay per core when other jobs share the
#: machine's cores, where wall-clock rates would mostly measure the contention.
_clock = time.process_time

BATCH = 1000
STOP = {"the", "be", "to", "of", "and", "that", "have", "with"}


def corpus(n: int, languages: list[str], seed: int = 0) -> list[str]:
    from benchmarks.corpora.documents import docs_from_text

    docs = docs_from_text(n, 2000, seed=seed, languages=languages)
    rng = random.Random(seed)
    out = []
    for d in docs:
        r = rng.random()
        paras = d.split("\n")
        if r < 0.05:                                    # a paragraph pasted several times
            paras = paras + [paras[0]] * 3
        elif r < 0.10:                                  # menu / footer boilerplate lines
            paras = ["Home", "About us", "Contact"] + paras + ["Privacy policy", "Terms of use"]
        out.append("\n".join(paras))
    return out


# ------------------------------------------------------------------ per-document reference


def _dups(items):
    seen, n, chars = set(), 0, 0
    for x in items:
        if x in seen:
            n, chars = n + 1, chars + len(x)
        seen.add(x)
    return n, chars


def reference_gopher(text: str) -> str | None:
    """Gopher repetition + quality as per-document Python (datatrove's style)."""
    if not text:
        return "empty"
    lines = [ln for ln in re.split(r"\n+", text) if ln.strip()]
    paras = [p for p in re.split(r"\n{2,}", text.strip()) if p.strip()]
    if lines and _dups(lines)[0] / len(lines) > 0.3:
        return "dup_line_frac"
    if paras and _dups(paras)[0] / len(paras) > 0.3:
        return "dup_para_frac"
    if _dups(lines)[1] / len(text) > 0.2:
        return "dup_line_char_frac"
    if _dups(paras)[1] / len(text) > 0.2:
        return "dup_para_char_frac"
    words = text.split()
    for n, thr in ((2, 0.2), (3, 0.18), (4, 0.16)):
        grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        if grams:
            g, c = grams.most_common(1)[0]
            if c > 1 and len(g) * c / len(text) > thr:
                return f"top_{n}gram"
    for n, thr in ((5, .15), (6, .14), (7, .13), (8, .12), (9, .11), (10, .10)):
        seen, rep, i = set(), 0, 0
        while i < len(words) - n + 1:
            g = "".join(words[i:i + n])
            if g in seen:
                rep += len(g)
                i += n
            else:
                seen.add(g)
                i += 1
        if rep / len(text) > thr:
            return f"dup_{n}gram"
    nonsym = [w for w in words if any(ch.isalnum() for ch in w)]
    if not 50 <= len(nonsym) <= 100000:
        return "words"
    mean = sum(len(w) for w in nonsym) / len(nonsym)
    if not 3 <= mean <= 10:
        return "mean_word_length"
    if max(text.count("#"), text.count("...") + text.count("\u2026")) / len(nonsym) > 0.1:
        return "symbol_ratio"
    all_lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if sum(ln.startswith(("\u2022", "-")) for ln in all_lines) / len(all_lines) > 0.9:
        return "bullets"
    if sum(ln.endswith(("...", "\u2026")) for ln in all_lines) / len(all_lines) > 0.3:
        return "ellipsis"
    if sum(any(c.isalpha() for c in w) for w in words) / len(words) < 0.8:
        return "alpha"
    if sum(w.lower() in STOP for w in words) < 2:
        return "stop_words"
    return None


#: The default job's quality step (jobs/default.yaml).
DEFAULT_RULES = {"rules": ["gopher", "c4", "fineweb"], "c4": {"filter_no_terminal_punct": False}}


def language_words(text: str, lang: str) -> tuple[list[str], str]:
    """The words of a text as the rules see them, and the separator that joins them back."""
    from operators.filters.quality.segmentation import SEGMENTED_LANGUAGES, segment

    if lang in SEGMENTED_LANGUAGES:
        return segment([text], [lang])[0].to_pylist(), ""
    return text.split(), " "


def language_documents(lang: str, n: int, seed: int = 0) -> dict[str, list[str]]:
    """Fluent, shuffled and boilerplate-like documents from the language's held-out sentences."""
    import numpy as np

    from benchmarks.corpora.shared_data import shared_data
    from operators.lm_bundled import language_text

    pool = [ln for lines in language_text(shared_data(), lang).held_out.values() for ln in lines]
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    glue = "" if lang in ("zh", "ja") else " "   # no space after a CJK full stop
    fluent = []
    for _ in range(n):
        s = [pool[j] for j in rng.choice(len(pool), 8, replace=False)]
        fluent.append("\n".join(glue.join(s[j:j + 2]) for j in range(0, 8, 2)))
    shuffled, boiler = [], []
    for doc in fluent:
        lines = []
        for line in doc.split("\n"):
            words, sep = language_words(line, lang)
            prng.shuffle(words)
            lines.append(sep.join(words))
        shuffled.append("\n".join(lines))
        words, sep = language_words(doc.replace("\n", " "), lang)
        words = [w for w in (x.strip(".,;:!?\"'()\u3002\uff0c\u3001\u0964\u061f\u060c") for x in words) if w]
        boiler.append("\n".join(sep.join(words[i:i + prng.randint(1, 3)]) for i in range(0, min(len(words), 90), 3)))
    return {"fluent": fluent, "shuffled": shuffled, "boilerplate": boiler}


def per_language(n: int) -> list[dict]:
    """One row per language: drop shares of fluent / shuffled / boilerplate-like documents."""
    from collections import Counter

    from benchmarks.corpora.shared_data import shared_data
    from engine.documents import make_batch
    from operators.filters.quality import Quality
    from operators.lm_bundled import languages

    op = Quality(**DEFAULT_RULES)
    op.ensure_setup()
    rows = []
    for lang in languages(shared_data()):
        row: dict = {"rules": "default job", "corpus": f"{lang}: held-out sentences", "docs": n}
        skipped: Counter = Counter()
        for kind, docs in language_documents(lang, n).items():
            res = op.process(make_batch({"text": docs, "language": [lang] * len(docs)}))
            dropped = ~res.keep
            row[f"{kind} dropped %"] = round(100 * float(dropped.mean()), 1)
            if kind == "fluent":
                top = Counter(res.reasons[dropped].tolist()).most_common(2)
                row["fluent drops by"] = ", ".join(f"{r} {c}" for r, c in top)
            skipped.update({k.split(".")[1]: v for k, v in (res.counts or {}).items()})
        row["rules skipped"] = ", ".join(sorted(skipped)) or "-"
        rows.append(row)
    return rows


#: The default job's batch size (jobs/default.yaml executor.batch_size).
JOB_BATCH = 256


def mixed_languages(n_per_language: int, seed: int = 3) -> list:
    """Batches of fluent documents of every bundled language, shuffled together as in a multilingual
    crawl (~70 languages in a batch of the default job's 256)."""
    import pyarrow as pa

    from benchmarks.corpora.shared_data import shared_data
    from operators.lm_bundled import languages

    docs = [(doc, lang) for lang in languages(shared_data()) for doc in language_documents(lang, n_per_language)["fluent"]]
    random.Random(seed).shuffle(docs)
    return [pa.RecordBatch.from_pydict({"text": [d for d, _ in docs[i:i + JOB_BATCH]],
                                        "language": [lang for _, lang in docs[i:i + JOB_BATCH]]})
            for i in range(0, len(docs), JOB_BATCH)]


def _time_per_language(op, batches) -> tuple[float, int]:
    """The peer: one call per language present in each batch (what a filter that judges each language
    with its own settings does when it computes them apart)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t0 = _clock()
    kept = 0
    for b in batches:
        enc = pc.dictionary_encode(b.column("language"))
        codes = enc.indices.to_numpy()
        for code in range(len(enc.dictionary)):
            rows = np.flatnonzero(codes == code)
            kept += int(op.process(b.take(pa.array(rows))).keep.sum())
    return _clock() - t0, kept


def _time_operator(op, batches) -> tuple[float, int]:
    t0 = _clock()
    kept = 0
    for b in batches:
        r = op.process(b)
        kept += int(r.keep.sum())
    return _clock() - t0, kept


def run(quick: bool = False) -> dict:
    import pyarrow as pa

    from benchmarks.corpora.documents import batch_of
    from engine.documents import set_column
    from operators.filters.quality import Quality

    n = 3000 if quick else 20000
    en = corpus(n, ["en"])
    multi_langs = ["en", "de", "fr", "es", "ru", "zh", "ja", "ar"]
    multi = corpus(n // 3, multi_langs, seed=1)
    en_batches = [batch_of(en[i:i + BATCH]) for i in range(0, len(en), BATCH)]
    multi_batches = []
    for i in range(0, len(multi), BATCH):
        b = batch_of(multi[i:i + BATCH])
        langs = [multi_langs[(i + j) % len(multi_langs)] for j in range(b.num_rows)]
        multi_batches.append(set_column(b, "language", pa.array(langs, pa.string())))

    settings = [
        ("gopher_repetition", {"rules": ["gopher_repetition"]}),
        ("gopher_quality", {"rules": ["gopher_quality"]}),
        ("c4", {"rules": ["c4"]}),
        ("fineweb", {"rules": ["fineweb"]}),
        ("default job (gopher, c4 no-punct, fineweb)",
         {"rules": ["gopher", "c4", "fineweb"], "c4": {"filter_no_terminal_punct": False}}),
    ]
    rows = []
    figures = {}
    for name, params in settings:
        op = Quality(**params)
        op.ensure_setup()
        _time_operator(op, en_batches[:1])            # warm-up (regex compilation, imports)
        dt, kept = _time_operator(op, en_batches)
        rows.append({"rules": name, "corpus": "en", "docs": len(en), "docs/s": len(en) / dt,
                     "kept %": round(100 * kept / len(en), 1)})
        figures[f"{name.split(' ')[0]}_docs_per_s"] = round(len(en) / dt)
    op = Quality(rules=["gopher", "c4", "fineweb"], c4={"filter_no_terminal_punct": False})
    dt, kept = _time_operator(op, multi_batches)
    rows.append({"rules": "default job", "corpus": "8 languages", "docs": len(multi), "docs/s": len(multi) / dt,
                 "kept %": round(100 * kept / len(multi), 1)})
    figures["default_multilingual_docs_per_s"] = round(len(multi) / dt)

    mixed = mixed_languages(20 if quick else 80)
    n_mixed = sum(b.num_rows for b in mixed)
    t_one, kept_one = _time_operator(op, mixed)
    t_groups, kept_groups = _time_per_language(op, mixed)
    if kept_one != kept_groups:
        raise AssertionError(f"quality: one pass kept {kept_one}, one call per language {kept_groups}")
    langs_per_batch = sum(len(set(b.column("language").to_pylist())) for b in mixed) / len(mixed)
    rows.append({"rules": "default job", "corpus": f"75 languages mixed (~{langs_per_batch:.0f} a batch)",
                 "docs": n_mixed, "docs/s": n_mixed / t_one, "kept %": round(100 * kept_one / n_mixed, 1)})
    rows.append({"rules": "default job, one call per language", "corpus": "75 languages mixed", "docs": n_mixed,
                 "docs/s": n_mixed / t_groups, "kept %": round(100 * kept_groups / n_mixed, 1)})
    figures["mixed_75_languages_docs_per_s"] = round(n_mixed / t_one)
    figures["mixed_75_languages_ratio_vs_one_call_per_language"] = round(t_groups / t_one, 2)

    op = Quality(rules=["gopher"])
    t_op, kept_op = _time_operator(op, en_batches)
    t0 = _clock()
    kept_ref = sum(reference_gopher(t) is None for t in en)
    t_ref = _clock() - t0
    rows.append({"rules": "gopher (operator)", "corpus": "en", "docs": len(en), "docs/s": len(en) / t_op,
                 "kept %": round(100 * kept_op / len(en), 1)})
    rows.append({"rules": "gopher (per-doc Python reference)", "corpus": "en", "docs": len(en),
                 "docs/s": len(en) / t_ref, "kept %": round(100 * kept_ref / len(en), 1)})
    figures["docs_per_s_per_core"] = figures["default_docs_per_s"] if "default_docs_per_s" in figures else None
    figures["gopher_ratio_vs_per_doc_python"] = round(t_ref / t_op, 2)

    langs = per_language(60 if quick else 250)
    rows += langs
    fluent = {r["corpus"].split(":")[0]: r["fluent dropped %"] for r in langs}
    figures["languages"] = len(langs)
    figures["languages_fluent_dropped_under_10pct"] = sum(v < 10 for v in fluent.values())
    figures["fluent_dropped_pct_worst"] = max(fluent.items(), key=lambda kv: kv[1])
    figures["fluent_dropped_pct_median"] = sorted(fluent.values())[len(fluent) // 2]
    figures["shuffled_dropped_pct_median"] = sorted(r["shuffled dropped %"] for r in langs)[len(langs) // 2]
    figures["boilerplate_dropped_pct_min"] = min(r["boilerplate dropped %"] for r in langs)
    return {
        "figures": figures,
        "rows": rows,
        "inputs": {"docs_en": len(en), "docs_multilingual": len(multi), "doc_bytes": 2000, "batch": BATCH},
        "notes": ["one process, CPU time (process_time): docs/s are per core",
                  "75 languages mixed: fluent held-out documents of every bundled language shuffled into batches "
                  f"of {JOB_BATCH}; the peer calls the operator once per language of each batch (the same decisions)",
                  "per-language rows: the default job's rules with the bundled per-language table "
                  "(operators/filters/quality/languages.json) on documents of 8 held-out real sentences; see the "
                  "module docstring for the shuffled and boilerplate-like copies",
                  "the reference differs from the operator in small definitions (datatrove's greedy "
                  "n-gram skip, chars over len(text)), so kept % may differ slightly"],
    }


if __name__ == "__main__":
    from benchmarks.harness import print_result
    print_result("quality", run(quick=True))

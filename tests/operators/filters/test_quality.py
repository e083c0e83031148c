"""quality: Gopher / C4 / FineWeb rules on real sentences, constructed failures, the per-family
parameter scheme (and the old flat names), and a plain-Python reference of the vectorised signals."""
from __future__ import annotations

import gzip
import json
import pickle
import re
import unicodedata
from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from engine.documents import make_batch
from engine.registry import get_operator
from operators.filters.quality import FAMILIES, Quality
from operators.filters.quality.gopher_quality import STOP_WORDS, GopherQualitySettings
from operators.filters.quality.punctuation import TERMINAL


def sentences(shared_data, lang: str) -> list[str]:
    lines = (shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
    return [ln.strip() for ln in lines if len(ln.strip()) > 40]


@pytest.fixture(scope="module")
def en(shared_data):
    return sentences(shared_data, "en")


def good_doc(en, start: int, n: int = 10) -> str:
    """n consecutive real English web sentences that end in punctuation, one per line."""
    out = [s for s in en[start:] if s[-1] in ".!?" and not s.endswith("..")][:n]
    return "\n".join(out)


def run(texts, language=None, **params):
    cols = {"text": texts}
    if language is not None:
        cols["language"] = language
    op = pickle.loads(pickle.dumps(Quality(**params)))
    op.ensure_setup()
    return op.process(make_batch(cols))


def reasons(res) -> list[str | None]:
    return [None if k else r for k, r in zip(res.keep, res.reasons)]


def test_registered_and_params():
    assert get_operator("quality") is Quality
    assert Quality(rules=["gopher"]).params.rules == ["gopher_repetition", "gopher_quality"]
    assert Quality(rules=["fineweb", "gopher_quality"]).params.rules == ["gopher_quality", "fineweb"]
    with pytest.raises(ValidationError, match="rules"):
        Quality(rules=["nope"])
    with pytest.raises(ValidationError, match="min_wordz"):
        Quality(min_wordz=3)
    cols = Quality(rules=["c4"]).output_columns()
    assert "quality_c4_lines_removed" in cols and "quality_word_count" not in cols
    for rules in (["gopher", "c4", "fineweb"], ["gopher_repetition"]):
        q = Quality(rules=rules, gopher_repetition={"max_top_ngram_char_frac": {3: 0.2},
                                                    "max_dup_ngram_char_frac": {7: 0.1, 5: 0.2}})
        b = q.process(make_batch({"text": ["a b c d e f g h a b c d e f g h", None]})).batch
        assert {c for c in b.schema.names if c.startswith("quality_")} == set(q.output_columns())


def other_value(v):
    """A valid value of the same type as the default `v`, but different."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, dict):
        return {3: 0.5}
    return ["xx"]


def test_settings_are_nested_per_family(en):
    q = Quality(gopher_quality={"min_word_count": 5}, c4={"min_sentences": 1})
    assert q.params.gopher_quality.min_word_count == 5 and q.params.c4.min_sentences == 1
    assert q.params.fineweb == FAMILIES[3].Settings()          # untouched families keep their defaults
    doc = "The cat sat on the mat with the dog."
    assert reasons(run([doc], rules=["gopher_quality"])) == ["gopher_min_words"]
    assert reasons(run([doc], rules=["gopher_quality"], gopher_quality={"min_word_count": 5})) == [None]
    # a settings model is accepted as well as a mapping (what a per-language table will hand over)
    settings = GopherQualitySettings(min_word_count=5)
    assert Quality(gopher_quality=settings).params.gopher_quality == settings


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_old_flat_names_still_work_and_warn(family):
    assert family.renamed, f"{family.name} lists no old names"
    for old, new in family.renamed.items():
        value = other_value(family.Settings.model_fields[new].default)
        with pytest.warns(DeprecationWarning, match=re.escape(f"use {family.name}: {{{new}:")) as w:
            flat = Quality(**{old: value})
        assert w[0].filename == __file__                # the warning points at the caller
        assert getattr(flat.params, family.name) == family.Settings(**{new: value}), old
        assert flat.params == Quality(**{family.name: {new: value}}).params
    old, new = next(iter(family.renamed.items()))
    both = {old: other_value(family.Settings.model_fields[new].default), family.name: {new: None}}
    with pytest.warns(DeprecationWarning), pytest.raises(ValidationError, match="both given"):
        Quality(**both)


def test_default_job_uses_the_current_names(repo):
    import warnings

    import yaml
    steps = yaml.safe_load((repo / "jobs" / "default.yaml").read_text())["pipeline"]
    params = next(s["quality"] for s in steps if "quality" in s)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        q = Quality(**params)
    assert q.params.c4.filter_no_terminal_punct is False
    assert [f.name for f in q.families] == ["gopher_repetition", "gopher_quality", "c4", "fineweb"]


@pytest.mark.parametrize("params, place", [
    ({"c4": {"min_sentencez": 3}}, "pipeline[0].quality.c4.min_sentencez"),
    ({"min_wordz": 3}, "pipeline[0].quality.min_wordz"),
    ({"gopher_repetition": {"max_top_ngram_char_frac": {60: 0.1}}},
     "pipeline[0].quality.gopher_repetition.max_top_ngram_char_frac"),
    ({"rules": ["gopher", "nope"]}, "pipeline[0].quality.rules[1]"),
])
def test_bad_parameter_is_an_error_naming_its_place(params, place):
    from engine.errors import JobError
    from engine.graph import Graph
    from engine.job import parse_job

    with pytest.raises(JobError) as e:
        Graph(parse_job({"pipeline": [{"quality": params}]}), packages=["operators"])
    assert place in str(e.value)


def test_each_family_declares_its_signals_and_reasons(shared_data, en):
    """Run alone, a family writes exactly the columns it declares and drops only with its own reasons."""
    docs = [good_doc(en, i * 37, n=3 + i % 9) for i in range(20)]
    docs += ["\n".join([en[i]] * 4) for i in range(5)] + ["", None, "Short.", "x " * 300]
    docs += ["\n".join(sentences(shared_data, "zh")[i:i + 8]) for i in range(0, 40, 8)]
    langs = ["en"] * 29 + ["zh"] * 5
    seen: dict[str, set] = {}
    for family in FAMILIES:
        q = Quality(rules=[family.name])
        res = run(docs, language=langs, rules=[family.name])
        added = [c for c in res.batch.schema.names if c.startswith("quality_")]
        assert added == [f"quality_{s.name}" for s in q.families[0].signals()] == list(q.output_columns())
        got = {r for r in reasons(res) if r}
        assert got and got <= set(q.families[0].reasons()), (family.name, got)
        seen[family.name] = set(q.families[0].reasons())
    # no reason is shared between families, so a reject names the family that dropped it
    all_reasons = [r for rs in seen.values() for r in rs]
    assert len(all_reasons) == len(set(all_reasons))


def test_good_real_documents_pass(en):
    docs = [good_doc(en, i * 40) for i in range(10)]
    res = run(docs, c4={"filter_no_terminal_punct": False})
    assert reasons(res) == [None] * 10, reasons(res)
    b = res.batch
    assert all(w >= 50 for w in b.column("quality_word_count").to_pylist())
    assert all(s >= 2 for s in b.column("quality_stop_word_count").to_pylist())
    assert b.column("quality_c4_lines_removed").to_pylist() == [0] * 10


def test_each_rule_fires_with_its_reason(en):
    g = good_doc(en, 0)
    g2 = good_doc(en, 400)
    words = " ".join(g.split())
    cases = {
        "short": ("A short line of text.", "gopher_min_words"),
        "dup_lines": ("\n".join([g.split("\n")[0]] * 6 + g.split("\n")[:4]), "gopher_dup_line_frac"),
        "dup_5gram": (words + " " + words, "gopher_dup_5gram"),
        "top_2gram": (g + "\n" + " ".join(["buy now"] * 60) + ".", "gopher_top_2gram"),
        "symbols": (g + "\n" + " ".join(f"#tag{i}" for i in range(30)) + ".", "gopher_symbol_word_ratio"),
        "alpha": (g + "\n" + " ".join(str(i) for i in range(300)) + ".", "gopher_alpha_words"),
        "ellipsis": ("\n".join(s[:-1] + "..." for s in g.split("\n")), "gopher_ellipsis_lines"),
        "lorem": (g + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_lorem_ipsum"),
        "curly": (g + "\nfunction x() { return 1; }", "c4_curly_bracket"),
        "few_sentences": ("\n".join(g.split("\n")[:3]) + "\n" + " ".join(f"word{i}" for i in range(80)), "c4_min_sentences"),
        "good": (g2, None),
    }
    res = run([c[0] for c in cases.values()], c4={"filter_no_terminal_punct": False})
    got = dict(zip(cases, reasons(res)))
    assert got == {k: v[1] for k, v in cases.items()}
    # signals exist for dropped rows too
    wc = res.batch.column("quality_word_count").to_pylist()
    assert wc[0] == 5 and all(isinstance(x, int) for x in wc)


def test_first_failing_rule_wins(en):
    doc = "\n".join(["Same short line here."] * 5)   # dup lines, few words, few sentences...
    res = run([doc])
    assert reasons(res) == ["gopher_dup_line_frac"]
    res = run([doc], rules=["c4", "gopher_quality"])
    assert reasons(res) == ["gopher_min_words"]
    res = run([doc], rules=["fineweb"])
    assert reasons(res) == ["fineweb_short_line_ratio"]


def test_c4_line_removal_rewrites_text(en):
    g = good_doc(en, 80)
    lines = g.split("\n")
    doc = "\n".join([lines[0], "Menu", "Please enable JavaScript to view this page.", lines[1],
                     "This site uses cookies to improve your experience.", lines[2] + " [1]", "",
                     "Home | About | Contact"] + lines[3:])
    res = run([doc], rules=["c4"])
    out = res.batch.column("text").to_pylist()[0]
    assert out == "\n".join([lines[0], lines[1], lines[2]] + lines[3:])
    assert res.batch.column("quality_c4_lines_removed").to_pylist() == [4]
    assert res.keep.tolist() == [True]
    # FineWeb's setting: lines without terminal punctuation stay (short lines still go)
    res = run([doc], rules=["c4"], c4={"filter_no_terminal_punct": False})
    out = res.batch.column("text").to_pylist()[0]
    assert "Home | About | Contact" in out and "Menu" not in out and "JavaScript" not in out
    # remove_lines off: signals only
    res = run([doc], rules=["c4"], c4={"remove_lines": False})
    assert res.batch.column("text").to_pylist()[0] == doc


def test_fineweb_rules(en):
    g = good_doc(en, 120)
    lines = g.split("\n")
    dup = "\n".join(lines[:5] + [lines[0]] + lines[5:])
    listy = "\n".join(w for w in g.split())
    long_words = [w for s in en[:300] for w in s.split() if len(w) >= 11 and w.isalpha()][:60]
    lst = "\n".join(" ".join(long_words[i:i + 3]) + "." for i in range(0, 60, 3))
    res = run([g, dup, listy, "", None, lst], rules=["fineweb"])
    assert reasons(res) == [None, "fineweb_dup_line_char_ratio", "fineweb_line_punct_ratio",
                            "fineweb_empty", "fineweb_empty", "fineweb_list_ratio"]
    assert res.batch.column("quality_fineweb_short_line_ratio").to_pylist()[2] == 1.0
    b = res.batch
    assert b.column("quality_fineweb_line_punct_ratio").to_pylist()[0] == 1.0
    nlr = b.column("quality_fineweb_newline_word_ratio").to_pylist()[2]
    assert nlr == pytest.approx((len(g.split()) - 1) / len(g.split()), rel=1e-6)


def test_languages_without_spaces(shared_data, en):
    zh = "\n".join(sentences(shared_data, "zh")[:12])
    fi = "\n".join(s for s in sentences(shared_data, "fi")[:40] if s[-1] in ".!?")
    # without a language column zh is one "word" per line: Gopher drops it
    assert reasons(run([zh], rules=["gopher_quality"]))[0] == "gopher_min_words"
    # zh: ICU words (and the table's word length for them); fi: its own stop words; the same Finnish
    # text labelled en fails the English ones
    res = run([zh, fi, fi], language=["zh", "fi", "en"], rules=["gopher_quality"])
    assert reasons(res) == [None, None, "gopher_stop_words"]
    assert res.batch.column("quality_word_count").to_pylist()[0] > 150
    # not segmented, zh's word rules are skipped, and every skip is counted
    res = run([zh, zh], language=["zh", "zh"], rules=["gopher_quality"], segmented_languages=[])
    assert reasons(res) == [None, None]
    assert res.counts["skipped.gopher_min_words.zh"] == 2 and res.counts["skipped.gopher_stop_words.zh"] == 2
    # C4 keeps Chinese lines (they have 3 ICU words or more, 。 is terminal punctuation)
    res = run([zh], language=["zh"], rules=["c4"])
    assert res.batch.column("quality_c4_lines_removed").to_pylist()[0] <= 3
    assert res.keep.tolist() == [True]
    # `languages` limits the filter: the short doc in 'fr' passes untouched
    res = run(["Trop court.", "Too short."], language=["fr", "en"], languages=["en"])
    assert reasons(res) == [None, "gopher_min_words"]


def test_c4_counts_cjk_sentences_without_spaces(shared_data):
    # Chinese and Japanese put no space after 。！？: a paragraph of 12 real sentences on one line
    # counted as 1 sentence, so c4_min_sentences dropped nearly every zh/ja page.
    zh = "".join(sentences(shared_data, "zh")[:12])
    ja = "".join(sentences(shared_data, "ja")[:12])
    res = run([zh, ja, "今天天气很好。"], language=["zh", "ja", "zh"], rules=["c4"])
    counts = res.batch.column("quality_c4_sentences").to_pylist()
    assert counts[0] >= 10 and counts[1] >= 10 and counts[2] == 1
    assert reasons(res) == [None, None, "c4_min_sentences"]


# ---------------------------------------------------------------- plain-Python reference

def ref_signals(text: str) -> dict[str, float]:
    words = text.split()
    wl = [len(w) for w in words]
    total = sum(wl)
    out = {}
    for n in (2, 3, 4):
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        c = Counter(grams)
        best = max(((cnt, sum(len(w) for w in g)) for g, cnt in c.items()), default=(0, 0))
        out[f"top_{n}gram_char_frac"] = best[0] * best[1] / total if best[0] >= 2 and total else 0.0
    for n in range(5, 11):
        seen, covered = set(), [False] * len(words)
        for i in range(len(words) - n + 1):
            g = tuple(words[i:i + n])
            if g in seen:
                for j in range(i, i + n):
                    covered[j] = True
            seen.add(g)
        out[f"dup_{n}gram_char_frac"] = sum(l for l, c in zip(wl, covered) if c) / total if total else 0.0
    lines = [ln.strip() for ln in re.split(r"\n+", text) if ln.strip()]
    seen, d, dc = set(), 0, 0
    for ln in lines:
        if ln in seen:
            d, dc = d + 1, dc + len(ln)
        seen.add(ln)
    out["dup_line_frac"] = d / len(lines) if lines else 0.0
    out["dup_line_char_frac"] = dc / len(text) if text else 0.0
    return out


def ref_quality_signals(text: str) -> dict[str, float]:
    """Gopher quality and FineWeb signals, one document at a time, from their definitions."""
    words = text.split()
    real = [w for w in words if not all(unicodedata.category(c)[0] in "PS" for c in w)]
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    rlines = [ln.rstrip() for ln in text.split("\n") if ln.strip()]
    seen, dup_chars = set(), 0
    for ln in rlines:
        dup_chars += len(ln) if ln in seen else 0
        seen.add(ln)
    newlines = text.count("\n")
    ratio = lambda a, b: a / b if b else 0.0
    return {
        "word_count": len(real),
        "mean_word_length": ratio(sum(map(len, real)), len(real)),
        "symbol_word_ratio": ratio(max(text.count("#"), text.count("...") + text.count("\u2026")), len(real)),
        "bullet_line_frac": ratio(sum(ln[0] in "\u2022\u25cf\u2023\u25e6\u2219\u25aa-*" for ln in lines), len(lines)),
        "ellipsis_line_frac": ratio(sum(ln.endswith(("...", "\u2026")) for ln in lines), len(lines)),
        "alpha_word_frac": ratio(sum(any(c.isalpha() for c in w) for w in words), len(words)),
        "stop_word_count": sum(w.lower() in STOP_WORDS for w in words),
        "fineweb_lines": len(rlines),
        "fineweb_line_punct_ratio": ratio(sum(ln.rstrip("\"'\u201d\u2019\u00bb)]")[-1:] in TERMINAL for ln in rlines),
                                          len(rlines)),
        "fineweb_short_line_ratio": ratio(sum(len(ln) <= 30 for ln in rlines), len(rlines)),
        "fineweb_dup_line_char_ratio": ratio(dup_chars, len(text) - newlines),
        "fineweb_newline_word_ratio": newlines / len(words) if words else (float("inf") if newlines else 0.0),
    }


def test_vectorised_signals_match_reference(shared_data, en):
    docs = []
    for name in ("cc_en_head-0091.jsonl.gz", "cc_en_head-0174.jsonl.gz"):
        with gzip.open(shared_data / "ccnet-reference" / name, "rt") as f:
            docs.extend(json.loads(line)["text"] for line in f)
    rng = np.random.default_rng(0)
    for i in range(10):   # real sentences with repeats spliced in at random places
        s = en[i * 30:(i + 1) * 30]
        picks = [s[j] for j in rng.integers(0, len(s), 40)]
        docs.append("\n".join(picks))
    for i in range(5):    # lists, hashtags, ellipses and blank lines around real sentences
        s = en[300 + i * 20:300 + (i + 1) * 20]
        docs.append("\n".join(f"- {x}" if j % 2 else f"{x[:30]}..." for j, x in enumerate(s)))
        docs.append("\n\n  ".join(s[:8]) + "\n#tag #news \u2026\n\u2022 " + "\n\u2022 ".join(s[8:]))
    docs += ["", "one", "a a a a a a a a a a a a", "x y " * 50, "\n\n", "-- \u2014 !!", "The end..."]
    res = run(docs, rules=["gopher", "fineweb"])
    b = res.batch
    for i, t in enumerate(docs):
        ref = ref_signals(t) | ref_quality_signals(t)
        for k, v in ref.items():
            got = b.column(f"quality_{k}").to_pylist()[i]
            assert got == pytest.approx(v, rel=1e-5, abs=1e-6), (i, k, got, v)


# ---------------------------------------------------------------- per-language settings table

GERMAN_STOP_WORDS = ["der", "die", "das", "und", "in", "zu", "den", "von", "mit", "ist", "nicht", "ein", "eine"]


def test_per_language_entry_overrides_only_its_rows(shared_data, en):
    de = [s for s in sentences(shared_data, "de") if s[-1] in ".!?"]
    doc = "\n".join(de[:10])
    stripped = "\n".join(" ".join(w for w in s.split() if w.lower() not in GERMAN_STOP_WORDS) for s in de[:10])
    en_stripped = " ".join(w for w in good_doc(en, 0).split() if w.lower() not in STOP_WORDS)
    texts, langs = [doc, stripped, en_stripped], ["de", "de", "en"]
    table = {"de": {"gopher_quality": {"stop_words": GERMAN_STOP_WORDS, "stop_words_languages": ["de"]}}}
    # without the bundled table the job's rule checks English rows only; the entry gives German rows
    # their own stop words
    bare = {"rules": ["gopher_quality"], "language_table": False}
    assert reasons(run(texts, language=langs, **bare)) == [None, None, "gopher_stop_words"]
    res = run(texts, language=langs, per_language=table, **bare)
    assert reasons(res) == [None, "gopher_stop_words", "gopher_stop_words"]
    counts = res.batch.column("quality_stop_word_count").to_pylist()
    assert counts[0] >= 10 and counts[1] == 0
    # names the entry does not give keep the job's values
    q = Quality(gopher_quality={"min_word_count": 20}, per_language=table, language_table=False)
    de_settings = q.params.settings_for("de")["gopher_quality"]
    assert de_settings.min_word_count == 20 and de_settings.stop_words == GERMAN_STOP_WORDS
    assert q.params.settings_for("en")["gopher_quality"] == q.params.gopher_quality


def test_per_language_rows_match_each_language_run_alone(shared_data, en):
    """Rows of a table language get what a job with that language's settings would give them."""
    job = {"rules": ["gopher", "c4", "fineweb"], "c4": {"filter_no_terminal_punct": False}}
    table = {"de": {"gopher_quality": {"stop_words": GERMAN_STOP_WORDS, "stop_words_languages": ["de"]},
                    "c4": {"min_sentences": 12}},
             "fr": {"c4": {"remove_lines": False}, "fineweb": {"short_line_length": 80},
                    "gopher_repetition": {"max_dup_line_frac": 0.05}}}
    pools = {lang: sentences(shared_data, lang) for lang in ("en", "de", "fr", "zh")}
    rng = np.random.default_rng(3)
    texts, langs = [], []
    for i in range(60):
        lang = ["en", "de", "fr", "zh", None][i % 5]
        pool = pools[lang or "en"]
        picks = [pool[j] for j in rng.integers(0, len(pool), int(rng.integers(3, 16)))]
        if i % 3 == 0:
            picks += ["Menu", "Home | Contact", picks[0]]        # boilerplate and a repeated line
        texts.append("\n".join(picks))
        langs.append(lang)
    mixed = run(texts, language=langs, per_language=table, **job)
    plain = run(texts, language=langs, **job)
    assert reasons(mixed) != reasons(plain)                      # the table changed some decisions
    signal_cols = [c for c in mixed.batch.schema.names if c.startswith("quality_")]
    assert signal_cols == [c for c in plain.batch.schema.names if c.startswith("quality_")]
    for lang in ("de", "fr", "en", "zh", None):
        rows = [i for i, x in enumerate(langs) if x == lang]
        params = dict(job)
        for family, override in table.get(lang, {}).items():
            params[family] = {**job.get(family, {}), **override}
        alone = run([texts[i] for i in rows], language=[langs[i] for i in rows], **params)
        assert [reasons(mixed)[i] for i in rows] == reasons(alone), lang
        for col in signal_cols + ["text"]:
            got = mixed.batch.column(col).to_pylist()
            assert [got[i] for i in rows] == alone.batch.column(col).to_pylist(), (lang, col)


@pytest.mark.parametrize("entry, message", [
    ({"c4": {"min_sentencez": 3}}, "pipeline[0].quality.per_language.de.c4.min_sentencez"),
    ({"c44": {}}, "pipeline[0].quality.per_language.de.c44"),
    ({"gopher_repetition": {"max_top_ngram_char_frac": {2: 0.3}}}, "per_language.de.gopher_repetition: changes"),
])
def test_bad_per_language_entry_is_an_error_naming_its_place(entry, message):
    from engine.errors import JobError
    from engine.graph import Graph
    from engine.job import parse_job

    with pytest.raises(JobError) as e:
        Graph(parse_job({"pipeline": [{"quality": {"per_language": {"de": entry}}}]}), packages=["operators"])
    assert message in str(e.value)


# ---------------------------------------------------------------- the bundled per-language table

TABLE_LANGS = ["de", "fr", "ru", "zh", "ja", "ar", "hi"]
DEFAULT_JOB = {"rules": ["gopher", "c4", "fineweb"], "c4": {"filter_no_terminal_punct": False}}


def held_out_docs(shared_data, lang: str, n: int = 20, source: str = "lingua") -> list[str]:
    """Documents of 8 real sentences the table was not derived from (lingua's held-out 25%, UD's 10%)."""
    from operators.lm_bundled import language_text

    held = language_text(shared_data, lang).held_out[source]
    rng = np.random.default_rng(7)
    glue = "" if lang in ("zh", "ja") else " "
    out = []
    for _ in range(n):
        s = [held[j] for j in rng.choice(len(held), 8, replace=False)]
        out.append("\n".join(glue.join(s[j:j + 2]) for j in range(0, 8, 2)))
    return out


@pytest.mark.parametrize("lang", TABLE_LANGS)
def test_table_judges_real_sentences_of_each_language(shared_data, lang):
    """Held-out real documents pass the default rules with the table; without the language's stop words
    they fail its stop-word rule; without the table the English-made rules misjudge them."""
    from operators.filters.quality.languages import language_table

    docs = held_out_docs(shared_data, lang)
    langs = [lang] * len(docs)
    res = run(docs, language=langs, **DEFAULT_JOB)
    assert np.mean(res.keep) >= 0.9, Counter(reasons(res))
    assert not res.counts  # every rule applies to these languages
    stop = set(language_table()["gopher_quality"][lang]["stop_words"])
    if lang in ("zh", "ja"):
        from operators.filters.quality.segmentation import segment
        words, rows, _ = segment(docs, langs)
        words, rows = words.to_pylist(), rows.tolist()
        stripped = ["".join(w for w, r in zip(words, rows) if r == i and w.lower() not in stop) for i in range(len(docs))]
    else:
        stripped = ["\n".join(" ".join(w for w in ln.split() if w.lower() not in stop) for ln in d.split("\n"))
                    for d in docs]
    res = run(stripped, language=langs, rules=["gopher_quality"])
    assert res.batch.column("quality_stop_word_count").to_pylist() == [0] * len(docs)
    why = Counter(reasons(res))   # stripping may also leave fewer than 50 words
    assert set(why) <= {"gopher_stop_words", "gopher_min_words"} and why["gopher_stop_words"] > len(docs) / 2
    bare = run(docs, language=langs, language_table=False, **DEFAULT_JOB)
    if lang in ("zh", "ja"):   # English word lengths: ICU's 1-2 character words are "too short"
        assert np.mean(bare.keep) < 0.5
        assert set(reasons(bare)) - {None} == {"gopher_mean_word_length"}
    else:                      # the English stop-word list is not checked for other languages: counted
        assert bare.counts[f"skipped.gopher_stop_words.{lang}"] == len(docs)


def test_rules_a_language_cannot_be_judged_by_are_skipped_and_counted(shared_data):
    th = held_out_docs(shared_data, "th", 6, source="ud")   # lingua's Thai lines all end in "." (cut at abbreviations)
    en_doc = held_out_docs(shared_data, "en", 1)[0]
    res = run(th + [en_doc, en_doc, en_doc], language=["th"] * 6 + ["bo", "xx", None], **DEFAULT_JOB)
    # Thai ends sentences without punctuation: C4's sentence count and FineWeb's punctuation share skip it
    assert res.counts["skipped.c4_min_sentences.th"] == 6
    assert res.counts["skipped.fineweb_line_punct_ratio.th"] == 6
    assert np.mean(res.keep[:6]) >= 0.8
    # bo: written without spaces, not segmented: the word rules; xx and no language: no stop words
    assert res.counts["skipped.gopher_min_words.bo"] == 1 and res.counts["skipped.gopher_top_2gram.bo"] == 1
    assert res.counts["skipped.gopher_stop_words.xx"] == 1 and res.counts["skipped.gopher_stop_words.none"] == 1
    # a job's per_language skip replaces the table's
    res = run(th, language=["th"] * 6, per_language={"th": {"skip": ["c4_min_sentences"]}}, **DEFAULT_JOB)
    assert set(res.counts) == {"skipped.c4_min_sentences.th"}
    assert set(reasons(res)) == {"fineweb_line_punct_ratio"}
    with pytest.raises(ValidationError, match="skip"):
        Quality(per_language={"th": {"skip": ["no_such_rule"]}})


def test_job_settings_override_the_table():
    q = Quality()
    zh = q.params.settings_for("zh")
    assert zh["gopher_quality"].min_mean_word_length < 3 and zh["fineweb"].short_line_length < 30
    assert zh["gopher_quality"].stop_words_languages == ["zh"]
    # a name the job sets for the family wins over every language's table entry ...
    q = Quality(gopher_quality={"min_mean_word_length": 2.5})
    assert q.params.settings_for("zh")["gopher_quality"].min_mean_word_length == 2.5
    assert q.params.settings_for("zh")["gopher_quality"].stop_words == zh["gopher_quality"].stop_words
    # ... and the job's per_language entry over both
    q = Quality(gopher_quality={"min_mean_word_length": 2.5}, per_language={"zh": {"gopher_quality": {
        "min_mean_word_length": 0.5}}})
    assert q.params.settings_for("zh")["gopher_quality"].min_mean_word_length == 0.5
    assert Quality(language_table=False).params.settings_for("zh")["gopher_quality"].min_mean_word_length == 3.0
    assert Quality().params.settings_for("en") == Quality(language_table=False).params.settings_for("en")


def test_segmentation_glues_punctuation_and_keeps_lines(shared_data):
    from operators.filters.quality.segmentation import segment
    from operators.filters.quality.text_batch import TextBatch

    zh = sentences(shared_data, "zh")[:3]
    ja = sentences(shared_data, "ja")[:2]
    th = sentences(shared_data, "th")[:2]
    texts = ["\n".join(zh), "\n\n".join(ja), " ".join(th)]
    words, rows, lines = segment(texts, ["zh", "ja", "th"])
    words, rows, lines = words.to_pylist(), rows.tolist(), lines.tolist()
    for i, t in enumerate(texts):   # nothing lost but whitespace
        assert "".join(w for w, r in zip(words, rows) if r == i) == "".join(t.split())
    assert not any(w[0] in "，。、" for w in words)      # punctuation glued to the word before it
    assert any(w.endswith("。") and len(w) > 1 for w in words)
    assert sorted(set(l for l, r in zip(lines, rows) if r == 0)) == [0, 1, 2]
    assert sorted(set(l for l, r in zip(lines, rows) if r == 1)) == [0, 2]
    # line words of the batch: each line's ICU words
    batch = make_batch({"text": texts, "language": ["zh", "ja", "th"]})
    tb = TextBatch(batch, ["zh", "ja", "th"], segmented_languages=["zh", "ja", "th"])
    lw = tb.line_words()
    line_text = tb.raw_lines.values.to_pylist()
    for k, line in enumerate(line_text):
        got = [w for w, at in zip(lw.values.to_pylist(), lw.rows.tolist()) if at == k]
        assert "".join(got) == "".join(line.split())


@pytest.mark.slow
def test_table_rebuilds_from_the_shared_data(shared_data):
    """languages.json is what its builder derives from the training text: nothing in it is typed in."""
    from operators.filters.quality.languages import TABLE_FILE, build

    assert build(shared_data) == json.loads(TABLE_FILE.read_text(encoding="utf-8"))


def test_skips_reach_stats_json(shared_data, tmp_path):
    from jobs.runjob import run_job

    th = held_out_docs(shared_data, "th", 6, source="ud")
    src = tmp_path / "th.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(th)))
    stats = run_job({"pipeline": [{"langid": {}}, {"quality": DEFAULT_JOB}]}, inputs=[str(src)],
                    out=str(tmp_path / "out"), executor="local", workers=1)
    counts = stats["operators"]["quality"]["counts"]
    assert counts["skipped.c4_min_sentences.th"] == stats["operators"]["quality"]["docs_in"] == 6

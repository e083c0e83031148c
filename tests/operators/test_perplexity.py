"""The perplexity operator: CCNet's normalisation and formula, buckets, missing languages, bundled models."""
from __future__ import annotations

import json
import pickle
import random
import re
import shutil
import unicodedata
from pathlib import Path

import kenlm
import numpy as np
import pytest
import sentencepiece as spm
from pydantic import ValidationError

from engine.documents import make_batch
from engine.registry import get_operator
from operators.lm_bundled import TRAINING_RECORD, language_text, languages
from operators.perplexity import (
    BUNDLED_MODELS,
    PUNCT_MAP,
    Perplexity,
    discover,
    normalize,
    normalize_documents,
    normalize_whole,
    percentiles_from_counts,
)
from support import ccnet_reference, lingua_lines

LINGUA = ["en", "de", "fr", "es", "ru", "zh", "ja", "ar", "hi", "ko", "vi", "el"]


def reference_normalize(line: str) -> str:
    """CCNet's text_normalizer.normalize, written out step by step from its description."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = re.sub(r"\d", "0", line)
    line = "".join(PUNCT_MAP.get(c, c) for c in line)
    return re.sub("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]", "", line)


def hand_perplexity(text: str, lm: kenlm.Model, sp: spm.SentencePieceProcessor) -> float:
    """CCNet's DocLM formula on SentencePiece pieces of each normalised line."""
    log_score, length = 0.0, 0
    for line in text.split("\n"):
        tokenized = " ".join(sp.encode_as_pieces(reference_normalize(line)))
        log_score += lm.score(tokenized)  # bos=True, eos=True by default
        length += len(tokenized.split()) + 1
    return round(10.0 ** (-log_score / length), 1)


@pytest.fixture(scope="module")
def lingua(shared_data: Path) -> dict[str, list[str]]:
    return {lang: lingua_lines(shared_data, lang) for lang in LINGUA}


@pytest.fixture(scope="module")
def op() -> Perplexity:
    o = Perplexity()
    o.ensure_setup()
    return o


def test_normalize_matches_ccnet_on_real_multilingual_text(lingua):
    lines = [ln for lang in LINGUA for ln in lingua[lang][:200]]
    lines += ["  Prix: 12,50 €  — «très» ２０２４年！\x07", "ＦＵＬＬ　ｗｉｄｔｈ…", "Ça coûte１０％", "", "   "]
    bad = [ln for ln in lines if normalize(ln) != reference_normalize(ln)]
    assert not bad, bad[:3]
    assert normalize("Élève Ünïcödé 123,4 “x”") == 'eleve unicode 000,0 "x"'


def test_batch_normalisation_equals_normalising_each_line(lingua):
    rng = random.Random(3)
    lines = [ln for lang in LINGUA for ln in lingua[lang][:100]]
    lines += ["  Prix: 12,50 €  — «très» ２０２４年！\x07", "ΟΔΟΣ ΣΑΣ\u2028Σ", "İstanbul  ", "\u0301e", "", "   \t"]
    rng.shuffle(lines)
    docs = ["\n".join(lines[i:i + rng.randint(1, 9)]) for i in range(0, len(lines), 5)]
    got, counts = normalize_documents(docs)
    assert got == [normalize(ln) for d in docs for ln in d.split("\n")]
    assert counts.tolist() == [d.count("\n") + 1 for d in docs]
    assert [normalize_whole(d) for d in docs] == [normalize(d) for d in docs]


def test_batch_scores_equal_scoring_each_document(op, lingua):
    """One SentencePiece call per language and batch, ids gathered into KenLM's input: the same
    perplexity as `perplexity` per document, also for pieces the model does not know (other scripts)."""
    rng = random.Random(5)
    other = [ln for lang in ("zh", "ar", "ru") for ln in lingua[lang][:20]] + ["😀 ☃ ½ x²", ""]
    for lang in ("en", "de", "ja"):
        m = op.model(lang)
        own = lingua[lang][:120]
        docs = ["\n".join(rng.sample(own, 3) + rng.sample(other, rng.randint(0, 2))) for _ in range(60)]
        for mode in ("split", "ccnet"):
            assert m.perplexities(docs, mode) == [m.perplexity(d, mode) for d in docs]


def test_operator_registered_and_params_validated():
    assert get_operator("perplexity") is Perplexity
    with pytest.raises(ValidationError):
        Perplexity(modles="bundled")  # unknown key
    with pytest.raises(ValidationError):
        Perplexity(percentiles=[60, 30])
    with pytest.raises(ValidationError):
        Perplexity(tokenizer="bpe")


def test_score_matches_ccnet_formula_by_hand(op, shared_data):
    texts = [d["text"] for d in ccnet_reference(shared_data)[:4]]
    texts.append("Line one of a document.\n\nSecond line, with 3 digits: 123!\n")
    lm = kenlm.Model(str(BUNDLED_MODELS / "en.arpa.bin"))
    sp = spm.SentencePieceProcessor(model_file=str(BUNDLED_MODELS / "en.sp.model"))
    res = op.process(make_batch({"text": texts, "language": ["en"] * len(texts)}))
    got = res.batch.column("perplexity").to_pylist()
    want = [hand_perplexity(t, lm, sp) for t in texts]
    assert got == want
    assert all(10 < p < 100_000 for p in got)
    # ccnet line mode: the whole document normalised at once (newlines removed) = one line.
    glued = Perplexity(line_mode="ccnet")
    glued.ensure_setup()
    g = glued.process(make_batch({"text": texts, "language": ["en"] * len(texts)})).batch
    joined = [hand_perplexity(reference_normalize(t), lm, sp) for t in texts]
    assert g.column("perplexity").to_pylist() == joined
    assert joined != want


def test_fluent_text_scores_lower_than_shuffled(op, lingua):
    """Real sentences the models never saw (Lingua en: English model is trained on WikiText; Lingua de/fr:
    last 25% held out by scripts/build_models.sh) against the same words in random order."""
    rng = random.Random(1)
    for lang, sents in (("en", lingua["en"][:300]), ("de", lingua["de"][-200:]), ("fr", lingua["fr"][-200:])):
        m = op.model(lang)
        fluent = np.array([m.perplexity(s) for s in sents])
        shuffled = []
        for s in sents:
            w = s.split()
            rng.shuffle(w)
            shuffled.append(m.perplexity(" ".join(w)))
        shuffled = np.array(shuffled)
        differs = np.array([len(s.split()) > 3 for s in sents])
        assert np.mean(fluent[differs] < shuffled[differs]) > 0.9, lang
        assert np.median(shuffled) > 1.4 * np.median(fluent), lang


def test_buckets_follow_cutoffs(tmp_path, lingua):
    texts = lingua["en"][:30]
    probe = Perplexity()
    probe.ensure_setup()
    pp = probe.process(make_batch({"text": texts, "language": ["en"] * 30})).batch.column("perplexity").to_numpy()
    lo, hi = np.percentile(pp, [30, 60])
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps({"_meta": {}, "en": {"30": float(lo), "60": float(hi), "50": 1.0}}))
    o = Perplexity(cutoffs=str(cut), percentiles=[30, 60])
    o.ensure_setup()
    b = o.process(make_batch({"text": texts, "language": ["en"] * 30})).batch
    buckets = np.array(b.column("bucket").to_pylist())
    expected = np.where(pp < lo, "head", np.where(pp < hi, "middle", "tail"))
    assert (buckets == expected).all()
    assert set(buckets) == {"head", "middle", "tail"}
    # percentiles missing from the file are a clear error, not a silent default
    with pytest.raises(ValueError, match="percentile"):
        Perplexity(cutoffs=str(cut), percentiles=[20, 60]).ensure_setup()


def test_missing_language_passes_or_drops(lingua):
    texts = [lingua["en"][0], "Texto en una lengua sin modelo.", "no language", "", lingua["de"][0]]
    langs = ["en", "xx", None, "en", "de"]
    o = Perplexity(languages=["en", "de"])
    o.ensure_setup()
    r = o.process(make_batch({"text": texts, "language": langs}))
    pp = r.batch.column("perplexity").to_pylist()
    buckets = r.batch.column("bucket").to_pylist()
    assert pp[0] is not None and pp[4] is not None
    assert pp[1] is None and pp[2] is None and pp[3] is None  # empty text: no score, as CCNet
    assert buckets[1] == buckets[2] == buckets[3] == "none"
    assert buckets[0] in ("head", "middle", "tail") and buckets[4] in ("head", "middle", "tail")
    assert r.keep is None

    d = Perplexity(languages=["en", "de"], drop_missing=True)
    d.ensure_setup()
    r = d.process(make_batch({"text": texts, "language": langs}))
    assert r.keep.tolist() == [True, False, False, True, True]
    assert list(r.reasons[[1, 2]]) == ["no_model", "no_model"]


def test_pickles_before_and_after_setup(op, lingua):
    batch = make_batch({"text": lingua["fr"][:5], "language": ["fr"] * 5})
    want = op.process(batch).batch.column("perplexity").to_pylist()
    fresh = pickle.loads(pickle.dumps(Perplexity()))
    fresh.ensure_setup()
    assert fresh.process(batch).batch.column("perplexity").to_pylist() == want
    again = pickle.loads(pickle.dumps(op))  # after setup: models are reloaded lazily in the worker
    again.ensure_setup()
    assert again.process(batch).batch.column("perplexity").to_pylist() == want


def test_ccnet_layout_and_cutoff_csv(tmp_path, lingua):
    """CCNet's published files (<lang>.sp.model, <lang>.arpa.bin, cutoff.csv) are used as they are."""
    for name in ("en.sp.model", "en.arpa.bin"):
        shutil.copy(BUNDLED_MODELS / name, tmp_path / name)
    rows = ["," + "en"] + [f"{p},{10.0 * p}" for p in range(101)]
    (tmp_path / "cutoff.csv").write_text("\n".join(rows) + "\n")
    o = Perplexity(models=str(tmp_path), cutoffs=str(tmp_path / "cutoff.csv"))
    o.ensure_setup()
    assert set(o.available) == {"en"}
    assert o.cutoffs["en"] == (300.0, 600.0)
    r = o.process(make_batch({"text": lingua["en"][:20], "language": ["en"] * 20})).batch
    for p, b in zip(r.column("perplexity").to_pylist(), r.column("bucket").to_pylist()):
        assert b == ("head" if p < 300 else "middle" if p < 600 else "tail")
    # no sp model beside an LM: sentencepiece mode refuses, naming the fix
    (tmp_path / "en.sp.model").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer: whitespace"):
        Perplexity(models=str(tmp_path), cutoffs=str(tmp_path / "cutoff.csv")).ensure_setup()


def test_bundled_models_complete_and_small(shared_data):
    """A model for every language with text here (the 75 of lingua), each with cut-offs and a line in
    training.json and models/README.md; models/ under 60 MB."""
    found = discover(BUNDLED_MODELS)
    assert set(found) == set(languages(shared_data)) and len(found) == 75
    assert all(v["sp"] is not None for v in found.values())
    cut = json.loads((BUNDLED_MODELS / "cutoffs.json").read_text())
    training = json.loads((BUNDLED_MODELS / TRAINING_RECORD).read_text())
    readme = (BUNDLED_MODELS / "README.md").read_text()
    for lang in found:
        assert cut[lang]["30"] < cut[lang]["60"], lang
        assert training[lang]["train_lines"]["lingua"] == language_text(shared_data, lang).train_counts["lingua"]
        assert f"| {lang} |" in readme, lang
    assert training["pt"]["train_lines"]["ud"] > 20_000 and training["en"]["train_lines"]["wikitext"] > 10_000
    total = sum(f.stat().st_size for f in BUNDLED_MODELS.rglob("*") if f.is_file())
    assert total < 60 * 2**20


def test_relative_models_path_resolves_against_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # "models" is not in CWD: the repo root is tried next
    o = Perplexity(models="models", languages=["ja"])
    o.ensure_setup()
    assert o.models_dir == BUNDLED_MODELS
    r = o.process(make_batch({"text": ["クロノたちが13年ぶりに再会！"], "language": ["ja"]})).batch
    assert r.column("perplexity").to_pylist()[0] > 1


# ---------------------------------------------------------------- cutoffs: auto

AUTO_LANGS = {"en": 130, "de": 110, "fr": 25}   # fr: fewer than min_documents, keeps the bundled cut-offs


def auto_job(min_documents: int = 100) -> dict:
    return {"pipeline": [{"langid": {}}, {"perplexity": {"cutoffs": "auto", "min_documents": min_documents}}],
            "output": {"partition_by": ["language", "bucket"]}}


@pytest.fixture(scope="module")
def auto_inputs(tmp_path_factory, lingua) -> dict[str, list[str]]:
    """The same real documents (4 held-out lingua sentences each) as 3 shards and as 1 shard."""
    rng = random.Random(5)
    docs = []
    for lang, n in AUTO_LANGS.items():
        held = lingua[lang][-250:]
        docs += [{"id": f"{lang}-{i}", "text": "\n".join(rng.sample(held, 4))} for i in range(n)]
    rng.shuffle(docs)
    d = tmp_path_factory.mktemp("auto-in")
    out = {"three": [], "one": []}
    for name, parts in (("three", [docs[0::3], docs[1::3], docs[2::3]]), ("one", [docs])):
        for k, part in enumerate(parts):
            p = d / f"{name}-{k}.jsonl"
            p.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in part))
            out[name].append(str(p))
    return out


def buckets_of(out) -> dict[str, tuple[str, str, float]]:
    from operators.writers import read_documents

    t = read_documents(str(out)).to_pylist()
    return {r["id"]: (r["language"], r["bucket"], r["perplexity"]) for r in t}


@pytest.fixture(scope="module")
def auto_local(tmp_path_factory, auto_inputs):
    from jobs.runjob import run_job

    out = tmp_path_factory.mktemp("auto-out") / "local"
    stats = run_job(auto_job(), inputs=auto_inputs["three"], out=str(out), executor="local", workers=2)
    return out, stats


def test_percentiles_from_counts_equal_numpy():
    rng = np.random.default_rng(0)
    for _ in range(300):
        x = np.round(rng.lognormal(5, 0.6, int(rng.integers(1, 400))), 1)
        values, counts = np.unique(x, return_counts=True)
        pcts = [0, 5, 30, 33, 50, 60, 95, 100]
        assert percentiles_from_counts(values, counts, pcts) == {p: float(np.percentile(x, p)) for p in pcts}


def test_auto_cutoffs_from_the_jobs_own_documents(auto_local):
    """Each language with enough documents gets the exact percentiles of its documents' perplexity,
    written to OUT/cutoffs.json and used for its buckets; fr (too few) keeps the bundled cut-offs,
    and stats.json says which."""
    out, stats = auto_local
    g = stats["global"]["perplexity_buckets"]
    docs = buckets_of(out)
    langs = {lang for lang, _, _ in docs.values()}
    assert {"en", "de", "fr"} <= langs
    auto = {lg: n for lg, n in g["auto"].items()}
    assert set(auto) == {lg for lg in langs if sum(v[0] == lg for v in docs.values()) >= 100} == {"en", "de"}
    assert "fr" in g["fallback"] and g["min_documents"] == 100
    written = json.loads((out / "cutoffs.json").read_text())
    bundled = json.loads((BUNDLED_MODELS / "cutoffs.json").read_text())
    for lang in ("en", "de"):
        ppl = np.array([p for lg, _, p in docs.values() if lg == lang])
        assert auto[lang] == len(ppl)
        want = {str(q): round(float(np.percentile(ppl, q)), 1) for q in (30, 60)}
        assert {q: written[lang][q] for q in ("30", "60")} == want
        assert written["_meta"]["languages"][lang]["source"] == "auto"
        lo, hi = want["30"], want["60"]
        for lg, bucket, p in docs.values():
            if lg == lang:
                assert bucket == ("head" if p < lo else "middle" if p < hi else "tail")
        shares = [sum(1 for lg, b, _ in docs.values() if lg == lang and b == x) / len(ppl)
                  for x in ("head", "middle", "tail")]
        assert 0.2 < shares[0] < 0.4 and 0.2 < shares[1] < 0.4
    assert written["fr"] == bundled["fr"] and written["_meta"]["languages"]["fr"]["source"] == "models"
    assert g["cutoffs"]["fr"] == [bundled["fr"]["30"], bundled["fr"]["60"]]


def test_auto_cutoffs_file_buckets_a_later_job_the_same_way(auto_local, auto_inputs, tmp_path):
    from jobs.runjob import run_job

    out, _ = auto_local
    spec = {"pipeline": [{"langid": {}}, {"perplexity": {"cutoffs": str(out / "cutoffs.json")}}]}
    run_job(spec, inputs=auto_inputs["one"], out=str(tmp_path / "later"), executor="local", workers=1)
    assert buckets_of(tmp_path / "later") == buckets_of(out)


def test_auto_cutoffs_same_whatever_the_workers_and_shards(auto_local, auto_inputs, tmp_path):
    from jobs.runjob import run_job

    out, _ = auto_local
    run_job(auto_job(), inputs=auto_inputs["one"], out=str(tmp_path / "one"), executor="local", workers=1)
    assert buckets_of(tmp_path / "one") == buckets_of(out)
    a, b = (json.loads((o / "cutoffs.json").read_text()) for o in (out, tmp_path / "one"))
    assert {k: v for k, v in a.items() if k != "_meta"} == {k: v for k, v in b.items() if k != "_meta"}


def test_auto_is_a_barrier_after_scoring():
    from engine.graph import Graph
    from engine.job import parse_job

    g = Graph(parse_job(auto_job()), packages=["operators"])
    names = [o.name for o in g.operators]
    assert names == ["langid", "perplexity", "perplexity_buckets"]
    assert g.operators[1].output_columns() == ("perplexity",)
    assert "perplexity_buckets" in repr(g.stages[0]) and "apply:perplexity_buckets" in repr(g.stages[1])
    plain = Graph(parse_job({"pipeline": [{"langid": {}}, {"perplexity": {}}]}), packages=["operators"])
    assert [o.name for o in plain.operators] == ["langid", "perplexity"]


@pytest.mark.ray
@pytest.mark.slow
def test_auto_cutoffs_identical_on_ray(auto_local, auto_inputs, tmp_path, ray_cluster):
    """The same job on the session's 2-node Ray cluster: the same buckets and cut-offs as locally."""
    import ray

    from jobs.runjob import run_job

    out, _ = auto_local
    run_job(auto_job(), inputs=auto_inputs["three"], out=str(tmp_path / "ray"), executor="ray", workers=2,
            address=ray_cluster.address)
    if ray.is_initialized():
        ray.shutdown()
    assert buckets_of(tmp_path / "ray") == buckets_of(out)
    a, b = (json.loads((o / "cutoffs.json").read_text()) for o in (out, tmp_path / "ray"))
    assert {k: v for k, v in a.items() if k != "_meta"} == {k: v for k, v in b.items() if k != "_meta"}


@pytest.mark.ray
@pytest.mark.slow
def test_auto_cutoffs_identical_on_a_private_ray_instance(auto_local, auto_inputs, tmp_path):
    """`--executor ray` without an address (a local Ray instance the job starts): the same buckets."""
    from jobs.runjob import run_job

    out, _ = auto_local
    run_job(auto_job(), inputs=auto_inputs["three"], out=str(tmp_path / "ray"), executor="ray", workers=2)
    assert buckets_of(tmp_path / "ray") == buckets_of(out)
    assert (json.loads((tmp_path / "ray" / "cutoffs.json").read_text())["de"]
            == json.loads((out / "cutoffs.json").read_text())["de"])

"""importance: the weight is exactly DSIR's log-likelihood ratio of hashed uni/bigrams (checked
against a plain-Python computation), the tables are the smoothed counts, and a model trained on real
text separates text it never saw."""
from __future__ import annotations

import collections
import math

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.classifier import python_features, python_reference_weight
from engine.documents import TEXT, make_batch
from operators.columns import LANGUAGE
from operators.dedup.minhash import normalize
from operators.importance import Importance, ImportanceModel
from operators.signal_training import fit_importance, roc_auc, train_importance

TRAIN, UNSEEN = 400, 100
#: Documents with what tokenisation has to get right: case, punctuation, digits, accents, other
#: scripts, newlines, a single word, nothing at all.
ODD_DOCS = ["The Quick brown fox, 1999 -- jumped!\nOver the lazy dog.", "Straße café naïve «déjà vu»",
            "Москва — столица России.", "word", "", "   \n  ", "a a a a b b"]


@pytest.fixture(scope="module")
def corpus(shared_data):
    from benchmarks.corpora.signal_corpus import ud_english, wikitext_paragraphs

    wiki = list(wikitext_paragraphs()[:TRAIN + UNSEEN])
    web = list(ud_english()[1][:TRAIN + UNSEEN])
    return {"target": wiki[:TRAIN], "source": web[:TRAIN], "unseen_target": wiki[TRAIN:], "unseen_source": web[TRAIN:]}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, corpus):
    path = tmp_path_factory.mktemp("importance") / "wiki.npz"
    train_importance(corpus["target"], corpus["source"], path, buckets=1 << 14, language="en")
    return path


def test_weight_equals_the_formula_computed_directly(model_path, corpus):
    model = ImportanceModel.load(model_path)
    docs = ODD_DOCS + corpus["unseen_target"][:5] + corpus["unseen_source"][:5]
    got = model.weights(docs)
    want = [python_reference_weight(model, d) for d in docs]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)
    assert got[4] == 0.0 and got[5] == 0.0  # no words, no features
    # the operator writes the same, as float32, for every row
    res = Importance(model=str(model_path)).process(make_batch({TEXT: docs}))
    col = res.batch.column("wiki_importance")
    assert col.type == pa.float32() and col.null_count == 0
    np.testing.assert_allclose(col.to_numpy(), want, rtol=1e-5, atol=1e-4)
    assert res.keep is None  # no threshold: annotate only


def test_features_are_unigrams_then_bigrams_within_a_document():
    from operators.importance import ngram_features

    docs = ["alpha beta gamma", "", "delta", "Alpha, BETA!"]
    feats, doc, words = ngram_features(docs, 1 << 20)
    assert words.tolist() == [3, 0, 1, 2]
    assert np.bincount(doc, minlength=4).tolist() == [3 + 2, 0, 1, 2 + 1]  # no bigram across documents
    for d, text in enumerate(docs):
        assert sorted(feats[doc == d].tolist()) == sorted(python_features(text, 1 << 20))
    # "Alpha, BETA!" normalises to "alpha beta": its unigrams and bigram are also those of doc 0
    assert set(feats[doc == 3].tolist()) <= set(feats[doc == 0].tolist())


def test_tables_are_smoothed_bucket_counts():
    target = ["the cat sat on the mat", "a cat and a dog"]
    source = ["buy now click here", "click here to subscribe now", "cat"]
    buckets, alpha = 64, 0.5
    model = fit_importance(target, source, buckets, alpha)
    for texts, table, mean in ((target, model.log_p_target, model.mean_words_target),
                               (source, model.log_p_source, model.mean_words_source)):
        counts = collections.Counter(f for t in texts for f in python_features(t, buckets))
        total = sum(counts.values())
        want = [math.log((counts[b] + alpha) / (total + alpha * buckets)) for b in range(buckets)]
        np.testing.assert_allclose(table, want, rtol=1e-6)
        assert mean == pytest.approx(sum(len(t.split()) for t in texts) / len(texts))


def test_length_correction_and_per_word(model_path, corpus):
    model = ImportanceModel.load(model_path)
    docs = corpus["unseen_target"][:3] + ["word", ""]
    raw = model.weights(docs)
    k = np.array([len(normalize(d).split()) for d in docs], dtype=float)  # words as the features see them
    lt, ls = model.mean_words_target, model.mean_words_source
    poisson = k * (math.log(lt) - math.log(ls)) - (lt - ls)  # log Poisson(k; lt) - log Poisson(k; ls)
    np.testing.assert_allclose(model.weights(docs, length_correction=True), raw + poisson, rtol=1e-9)
    per_word = model.weights(docs, per_word=True)
    np.testing.assert_allclose(per_word[:4], raw[:4] / k[:4], rtol=1e-9)
    assert per_word[4] == 0.0


def test_separates_unseen_text_and_stores_its_figures(model_path, corpus):
    import json

    model = ImportanceModel.load(model_path)
    auc = roc_auc(model.weights(corpus["unseen_target"]), model.weights(corpus["unseen_source"]))
    assert auc > 0.9
    summary = json.loads(model_path.with_suffix(".json").read_text())
    assert summary["heldout"]["targets"] == 40 and summary["heldout"]["sources"] == 40
    assert summary["heldout"]["auc"] > 0.85
    assert summary["training"] == {"target_docs": TRAIN - 40, "source_docs": TRAIN - 40}
    assert model.language == "en" and model.buckets == 1 << 14


def test_threshold_drops_with_reason_and_languages(model_path, corpus):
    docs = corpus["unseen_target"][:4] + corpus["unseen_source"][:4]
    langs = ["en", "en", "de", "en", "en", "en", None, "en"]
    batch = make_batch({TEXT: docs, LANGUAGE: langs})
    model = ImportanceModel.load(model_path)
    weights = model.weights(docs, per_word=True)
    threshold = float(np.median(weights))
    res = Importance(model=str(model_path), name="wikiness", per_word=True, threshold=threshold).process(batch)
    col = res.batch.column("wikiness_importance").to_pylist()
    scored = np.array([lang == "en" for lang in langs])
    assert [c is None for c in col] == (~scored).tolist()
    want_drop = scored & (weights < threshold)
    assert want_drop.sum() >= 2
    assert (~res.keep == want_drop).all()
    assert set(res.reasons[want_drop]) == {"wikiness_below_threshold"}


def test_model_file_round_trip_and_bad_files(tmp_path, model_path):
    model = ImportanceModel.load(model_path)
    model.save(tmp_path / "copy.npz")
    again = ImportanceModel.load(tmp_path / "copy.npz")
    np.testing.assert_array_equal(again.log_p_target, model.log_p_target)
    assert again.meta["heldout"] == model.meta["heldout"]
    np.savez(tmp_path / "foreign.npz", log_p_target=np.zeros(4), log_p_source=np.zeros(4),
             mean_words_target=1.0, mean_words_source=1.0, meta=np.array('{"format": "other"}'))
    with pytest.raises(ValueError, match="not a decant importance model"):
        ImportanceModel.load(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError, match="neither a file nor a bundled model"):
        Importance(model="no-such-model")


def test_bundled_model():
    from benchmarks.corpora.signal_corpus import heldout_pages

    op = Importance()
    assert op.name == "curated" and op.output_columns() == ("curated_importance",)
    assert op.model.language == "en"
    pages = heldout_pages()[:30]
    article = op.model.weights([p["article"] for p in pages], per_word=True)
    boiler = op.model.weights([p["boilerplate"] for p in pages], per_word=True)
    assert roc_auc(article, boiler) > 0.9

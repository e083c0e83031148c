"""classifier: a fastText model trained on real text separates text it never saw, scores only its
language, drops below a threshold with its reason, and runs beside other classifiers in one job."""
from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from engine.documents import TEXT, make_batch
from engine.errors import JobError
from jobs.runjob import run_job
from operators.classifier import Classifier
from operators.columns import LANGUAGE
from operators.signal_training import roc_auc, shuffle_words, train_classifier
from operators.writers import read_documents, read_rejects

TRAIN, UNSEEN = 400, 100


@pytest.fixture(scope="module")
def corpus(shared_data):
    """Wikipedia paragraphs (positive) and UD English-EWT web text (negative); the last UNSEEN of
    each are never given to training."""
    from benchmarks.corpora.signal_corpus import ud_english, wikitext_paragraphs

    wiki = list(wikitext_paragraphs()[:TRAIN + UNSEEN])
    web = list(ud_english()[1][:TRAIN + UNSEEN])
    return {"pos": wiki[:TRAIN], "neg": web[:TRAIN], "unseen_pos": wiki[TRAIN:], "unseen_neg": web[TRAIN:]}


@pytest.fixture(scope="module")
def model(tmp_path_factory, corpus):
    path = tmp_path_factory.mktemp("classifier") / "wiki.bin"
    meta = train_classifier(corpus["pos"], corpus["neg"], path, bucket=50_000, language="en")
    return path, meta


def test_separates_unseen_text_and_records_its_metrics(model, corpus):
    path, meta = model
    op = Classifier(model=str(path))
    pos = op.score(pa.array(corpus["unseen_pos"]))
    neg = op.score(pa.array(corpus["unseen_neg"]))
    assert roc_auc(pos, neg) > 0.9
    assert np.median(pos) > 0.5 > np.median(neg)
    stored = json.loads(path.with_suffix(".json").read_text())
    assert stored["labels"] == ["positive", "negative"] and stored["language"] == "en"
    held = stored["heldout"]
    assert held["positives"] == 40 and held["negatives"] == 40  # 10% of each side
    assert held["auc"] > 0.85 and 0.0 <= held["precision"] <= 1.0 and 0.0 <= held["recall"] <= 1.0
    assert stored["training"]["positives"] == TRAIN - 40
    assert meta["heldout"] == held


def test_shuffled_negatives_teach_word_order(tmp_path, corpus):
    """Without shuffled copies a bag-of-words model cannot tell prose from its own words shuffled."""
    import random

    rng = random.Random(1)
    shuffled = [shuffle_words(t, rng) for t in corpus["unseen_pos"]]
    aucs = {}
    for share in (0.0, 0.5):
        path = tmp_path / f"m{share}.bin"
        meta = train_classifier(corpus["pos"], corpus["neg"], path, bucket=50_000,
                                shuffled_negatives=share)
        op = Classifier(model=str(path))
        aucs[share] = roc_auc(op.score(pa.array(corpus["unseen_pos"])), op.score(pa.array(shuffled)))
        assert meta["training"]["negatives"] == TRAIN - 40
        assert meta["training"]["shuffled_negative_docs"] == round((TRAIN - 40) * share)
    assert aucs[0.5] > 0.8
    assert aucs[0.5] > aucs[0.0] + 0.2


def test_text_is_normalised_as_for_language_id(model, corpus):
    op = Classifier(model=str(model[0]))
    lines = corpus["unseen_pos"][0].split(". ")
    multi = op.score(pa.array(["\n".join(lines), None, ""]))
    one = op.score(pa.array([" ".join(lines), "", ""]))
    assert multi[0] == pytest.approx(one[0], abs=1e-6)
    assert multi[1] == one[1]  # null scores as empty text


def test_name_column_and_label(model, corpus):
    path = model[0]
    default = Classifier(model=str(path))
    assert default.name == "wiki" and default.output_columns() == ("wiki_score",)
    neg = Classifier(model=str(path), name="web", label="negative")
    batch = make_batch({TEXT: corpus["unseen_pos"][:20] + corpus["unseen_neg"][:20]})
    a = default.process(batch).batch.column("wiki_score").to_numpy()
    b = neg.process(batch).batch.column("web_score").to_numpy()
    assert a.dtype == np.float32 and ((a >= 0) & (a <= 1)).all()
    np.testing.assert_allclose(a + b, 1.0, atol=1e-4)  # two labels: the probabilities add up
    with pytest.raises(ValueError, match="not one of the model's labels"):
        Classifier(model=str(path), label="hq")
    with pytest.raises(ValueError, match="name must be"):
        Classifier(model=str(path), name="Bad-Name")


def test_model_without_metadata_needs_its_label(tmp_path, model, corpus):
    bare = tmp_path / "other.bin"
    shutil.copyfile(model[0], bare)  # no other.json beside it: labels are read from the model itself
    with pytest.raises(ValueError, match="no label 'hq'"):
        Classifier(model=str(bare), label="hq").score(pa.array(["text"]))
    op = Classifier(model=str(bare))  # the default label, "positive", is one of this model's
    assert op.language is None and op.name == "other"
    texts = pa.array(corpus["unseen_pos"][:5])
    np.testing.assert_allclose(op.score(texts), Classifier(model=str(model[0])).score(texts), atol=1e-6)


def test_scores_only_the_models_language(model, corpus):
    texts = corpus["unseen_pos"][:3] + corpus["unseen_neg"][:3]
    batch = make_batch({TEXT: texts, LANGUAGE: ["en", "de", None, "en", "fr", "en"]})
    res = Classifier(model=str(model[0]), threshold=0.99).process(batch)
    scores = res.batch.column("wiki_score").to_pylist()
    assert [s is None for s in scores] == [False, True, True, False, True, False]
    assert res.keep[[1, 2, 4]].all()  # unscored rows are never dropped
    assert not res.keep[[3, 5]].any()  # web text scores below 0.99
    everything = Classifier(model=str(model[0]), languages=["en", "de", "fr"]).process(batch)
    assert everything.batch.column("wiki_score").null_count == 1  # only the null language
    no_language = Classifier(model=str(model[0])).process(make_batch({TEXT: texts}))
    assert no_language.batch.column("wiki_score").null_count == 0  # no langid before it: all scored


def _jsonl(path, texts):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"d{i:03d}", "text": t}) + "\n")
    return str(path)


def test_threshold_drops_with_reason_and_several_classifiers_coexist(tmp_path, model, corpus):
    path = str(model[0])
    texts = corpus["unseen_pos"][:30] + corpus["unseen_neg"][:30]
    src = _jsonl(tmp_path / "docs.jsonl.gz", texts)
    expected = Classifier(model=path).score(pa.array(texts))
    job = {"pipeline": [{"classifier": {"model": path, "threshold": 0.5}},
                        {"classifier": {"model": path, "name": "web", "label": "negative"}}],
           "output": {"partition_by": []}, "executor": {"workers": 1}}
    stats = run_job(job, inputs=[src], out=str(tmp_path / "out"))
    docs = read_documents(str(tmp_path / "out")).to_pylist()
    rejects = read_rejects(str(tmp_path / "out")).to_pylist()
    dropped = {f"d{i:03d}" for i in np.flatnonzero(expected < 0.5)}
    assert 20 <= len(dropped) <= 40  # mostly the web half
    assert {r["id"] for r in rejects} == dropped
    assert {(r["operator"], r["reason"]) for r in rejects} == {("wiki", "wiki_below_threshold")}
    assert stats["operators"]["wiki"]["dropped"] == {"wiki_below_threshold": len(dropped)}
    assert stats["operators"]["web"]["docs_in"] == len(texts) - len(dropped)
    for d in docs:
        i = int(d["id"][1:])
        assert d["wiki_score"] == pytest.approx(expected[i], abs=1e-6)
        assert d["wiki_score"] + d["web_score"] == pytest.approx(1.0, abs=1e-4)
    twice = {"pipeline": [{"classifier": {"model": path}}, {"classifier": {"model": path}}]}
    with pytest.raises(JobError, match="appear twice"):
        run_job(twice, inputs=[src], out=str(tmp_path / "out2"))


def test_bundled_model_ranks_article_text_above_boilerplate():
    from benchmarks.corpora.signal_corpus import heldout_pages

    pages = heldout_pages()[:30]
    op = Classifier()
    assert op.name == "wikipedia" and op.language == "en"
    article = op.score(pa.array([p["article"] for p in pages]))
    boiler = op.score(pa.array([p["boilerplate"] for p in pages]))
    assert roc_auc(article, boiler) > 0.9

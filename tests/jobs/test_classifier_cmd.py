"""`decant classifier train` and `decant importance train` from the command line: real text in
JSONL.gz, Parquet and a decant output folder in, a model the operators load out, with its held-out
figures printed and stored beside it."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.runjob import run_job
from operators.classifier import Classifier
from operators.importance import Importance
from operators.signal_training import roc_auc
from operators.writers import read_documents
from support import SHARED_DATA, lingua_lines


def decant(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, shared_data):
    """Positive text split over two JSONL.gz files, negative text in Parquet, and unseen text of both."""
    from benchmarks.corpora.signal_corpus import ud_english, wikitext_paragraphs

    d = tmp_path_factory.mktemp("signal-inputs")
    wiki, web = list(wikitext_paragraphs()[:450]), list(ud_english()[1][:650])
    for name, part in (("wiki-a.jsonl.gz", wiki[:200]), ("wiki-b.jsonl.gz", wiki[200:400])):
        with gzip.open(d / name, "wt", encoding="utf-8") as f:
            for i, t in enumerate(part):
                f.write(json.dumps({"id": f"{name}-{i}", "body": t}) + "\n")
    pq.write_table(pa.table({"id": [f"w{i}" for i in range(400)], "body": web[:400]}), d / "web.parquet")
    return {"dir": d, "pos": [str(d / "wiki-a.jsonl.gz"), str(d / "wiki-b.jsonl.gz")], "neg": str(d / "web.parquet"),
            "unseen_pos": wiki[400:], "unseen_neg": web[400:450], "crawl": web[450:650]}


def test_classifier_train(tmp_path, inputs):
    model = tmp_path / "wiki.ftz"
    r = decant("classifier", "train", "--positive", *inputs["pos"], "--negative", inputs["neg"], "--text-field", "body",
               "--bucket", "50000", "--shuffled-negatives", "0.3", "--language", "en", "-o", str(model))
    assert r.returncode == 0, r.stderr
    assert "positive: 400 documents from 2 input(s)" in r.stderr and "negative: 400 documents" in r.stderr
    assert "held out: auc" in r.stderr
    printed = json.loads(r.stdout)
    stored = json.loads(model.with_suffix(".json").read_text())
    assert printed == stored
    assert stored["training"]["quantized"] is True  # .ftz
    assert stored["training"]["positives"] == 360 and stored["heldout"]["positives"] == 40
    assert stored["heldout"]["auc"] > 0.85
    op = Classifier(model=str(model))
    assert op.name == "wiki" and op.language == "en"
    auc = roc_auc(op.score(pa.array(inputs["unseen_pos"])), op.score(pa.array(inputs["unseen_neg"])))
    assert auc > 0.9


def test_importance_train_from_a_decant_output(tmp_path, inputs):
    """The source is a decant output folder: its kept documents, only the English ones with --language."""
    docs = tmp_path / "crawl.jsonl"
    with open(docs, "w", encoding="utf-8") as f:
        for i, t in enumerate(inputs["crawl"] + lingua_lines(SHARED_DATA, "de")[:40]):
            f.write(json.dumps({"id": f"c{i}", "text": t}) + "\n")
    out = tmp_path / "crawl-out"
    run_job({"pipeline": [{"langid": {}}], "executor": {"workers": 1}}, inputs=[str(docs)], out=str(out))
    langs = read_documents(str(out), columns=["language"]).column("language").to_pylist()
    english = langs.count("en")
    assert langs.count("de") >= 30 and english >= 150
    model = tmp_path / "curated.npz"
    r = decant("importance", "train", "--target", *inputs["pos"], "--source", str(out), "--text-field", "body",
               "--language", "en", "--buckets", "16384", "-o", str(model))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["training"]["source_docs"] + summary["heldout"]["sources"] == english
    assert "held out: auc" in r.stderr
    op = Importance(model=str(model))
    assert op.name == "curated" and op.model.buckets == 16384 and op.model.language == "en"
    auc = roc_auc(op.model.weights(inputs["unseen_pos"]), op.model.weights(inputs["unseen_neg"]))
    assert auc > 0.85


def test_inputs_that_are_not_documents_are_an_error(tmp_path, inputs, shared_data):
    warc = str(shared_data / "warc" / "web-2024-sample-0000.warc.gz")
    r = decant("classifier", "train", "--positive", *inputs["pos"], "--negative", warc, "--text-field", "body",
               "-o", str(tmp_path / "m.bin"))
    assert r.returncode == 2
    assert "--negative" in r.stderr and "JSONL" in r.stderr and "warc" in r.stderr
    r = decant("importance", "train", "--target", str(tmp_path / "missing.jsonl"), "--source", inputs["neg"],
               "--text-field", "body", "-o", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and "--target" in r.stderr and "matches no file" in r.stderr
    r = decant("importance", "train", "--target", *inputs["pos"], "--source", inputs["neg"],  # text is in "body"
               "-o", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and "--target" in r.stderr and "wiki-a.jsonl.gz: no documents read" in r.stderr
    assert "'auto'" in r.stderr
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.npz").exists()

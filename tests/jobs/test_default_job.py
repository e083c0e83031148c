"""jobs/default.yaml end to end on real text: every operator's columns, CCNet buckets, and
near-duplicates across shards that line dedup cannot see removed by MinHash."""
from __future__ import annotations

import json
import random
import re

import pytest

from engine import io as eio
from engine.job import load_job
from jobs.paths import DEFAULT_JOB
from jobs.runjob import run_job
from operators.lm_train import detokenize_wikitext
from operators.writers import read_documents, read_rejects


def _articles(shared_data, n: int) -> list[str]:
    """Documents of four consecutive Wikipedia paragraphs (WikiText-2 valid, detokenised)."""
    paras = []
    for line in (shared_data / "text" / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s and not s.startswith("=") and len(s.split()) > 40:
            paras.append(detokenize_wikitext(s.replace(" <unk>", "")))
    return ["\n".join(paras[i:i + 4]) for i in range(0, 4 * n, 4)]


def _edit_each_paragraph(text: str, rng: random.Random) -> str:
    """Change one word in every paragraph: each line differs (line dedup keeps it), 5-gram Jaccard stays high."""
    out = []
    for para in text.split("\n"):
        words = para.split(" ")
        i = rng.randrange(len(words) // 3, len(words))
        words[i] = "mutated" + words[i]
        out.append(" ".join(words))
    return "\n".join(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    rng = random.Random(3)
    arts = _articles(shared_data, 24)
    assert len(arts) >= 20
    d = tmp_path_factory.mktemp("in")
    originals = {f"orig-{i}": t for i, t in enumerate(arts)}
    copies = {f"copy-{i}": _edit_each_paragraph(t, rng) for i, t in enumerate(arts[:8])}
    with open(d / "a.jsonl", "w") as f:
        for k, t in originals.items():
            f.write(json.dumps({"id": k, "text": t, "url": f"https://en.example.org/{k}"}) + "\n")
    with open(d / "b.jsonl", "w") as f:
        for k, t in copies.items():
            f.write(json.dumps({"id": k, "text": t, "url": f"https://mirror.example.net/{k}"}) + "\n")
    out = tmp_path_factory.mktemp("out") / "o"
    stats = run_job(load_job(DEFAULT_JOB), inputs=[str(d / "a.jsonl"), str(d / "b.jsonl")], out=str(out), workers=2)
    return out, stats, originals, copies


def test_accounting_and_columns(run):
    out, stats, originals, copies = run
    assert stats["total"]["accounting_ok"]
    assert stats["total"]["documents_read"] == len(originals) + len(copies)
    docs = read_documents(str(out))
    cols = set(docs.schema.names)
    for c in ("id", "url", "date", "source", "text", "language", "language_score", "perplexity", "bucket",
              "line_dedup_original_length", "line_dedup_nlines", "quality_word_count", "pii_emails"):
        assert c in cols, c
    assert set(docs.column("language").to_pylist()) == {"en"}
    assert set(docs.column("bucket").to_pylist()) <= {"head", "middle", "tail"}
    folders = {p.parent.relative_to(out / "documents").as_posix() for p in (out / "documents").rglob("*.parquet")}
    assert folders and all(f.startswith("language=en/bucket=") for f in folders)


def test_near_duplicates_across_shards_removed_by_minhash(run):
    out, stats, originals, copies = run
    rej = read_rejects(str(out)).to_pylist()
    by_op = {}
    for r in rej:
        by_op.setdefault(r["operator"], {})[r["id"]] = r["reason"]
    kept = set(read_documents(str(out)).column("id").to_pylist())
    # line dedup did not remove these copies (every paragraph differs) ...
    assert not set(copies) & set(by_op.get("line_dedup", {}))
    # ... MinHash did: every copy whose original reached the dedup step is gone, the original kept
    removed = by_op.get("minhash_dedup", {})
    pairs = [(f"copy-{i}", f"orig-{i}") for i in range(len(copies))
             if f"copy-{i}" not in set().union(*[set(v) for k, v in by_op.items() if k != "minhash_dedup"])
             and f"orig-{i}" in kept | set(removed)]
    assert len(pairs) >= 5
    for c, o in pairs:
        assert removed.get(c) == "near_duplicate" and o in kept
    dup = eio.read_parquet(str(out / "duplicates.parquet")).to_pylist()
    assert {(r["id"], r["kept_id"]) for r in dup} == set(pairs)
    assert not any(i.startswith("orig-") for i in removed)


def test_samples_folder(repo):
    names = ["cc-main-2020-34-sample.warc.gz", "web-2024-sample-0000.warc.gz", "web-2024-sample-0001.warc.gz",
             "clueweb09-ja-eucjp.warc.gz", "cc-main-2024-22-whirlwind.warc.wet.gz", "ccnet-sample.wet.txt"]
    lic = (repo / "samples/LICENSES.md").read_text()
    for n in names:
        assert (repo / "samples" / n).is_file() and n in lic
    for f in re.findall(r"licenses/[\w.-]+\.txt", lic):
        assert (repo / "samples" / f).is_file(), f

"""line_dedup -> exact_dedup -> minhash_dedup keep the same documents, reject the same ones for the
same reasons and record the same duplicates with 1 partition, 5, or `auto` (here 3): the winner of
each step is the smallest key, whatever partition it lands in."""
from __future__ import annotations

import json
import os
import random

import pytest

from engine import io as eio
from engine import partition_count
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects
from support import wikitext_words

STEPS = ("line_dedup", "exact_dedup", "minhash_dedup")


def job(partitions) -> dict:
    return {"pipeline": [{"line_dedup": {"partitions": partitions, "min_line_chars": 60}}, {"exact_dedup": {"partitions": partitions}},
                         {"minhash_dedup": {"partitions": partitions}}],
            "executor": {"workers": 2, "batch_size": 16}}


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> list[str]:
    """Four JSONL shards of real text: originals, copies with a word edited per line (near-duplicates),
    a boilerplate line shared by many documents (line dedup removes it), copies of long-line documents
    (line dedup empties them) and of short-line ones (lines under min_line_chars: exact dedup's)."""
    words = wikitext_words(shared_data)
    rng = random.Random(7)
    docs = {}
    for i in range(120):
        lines = [" ".join(words[i * 400 + k * 90:i * 400 + k * 90 + 80]) for k in range(4)]
        if i % 3 == 0:
            lines.append("Share this page on your favourite social network today")
        docs[f"o{i:03d}"] = lines
    for i in range(0, 120, 4):
        docs[f"x{i:03d}"] = list(docs[f"o{i:03d}"])
    for i in range(30):
        docs[f"s{i:03d}"] = [" ".join(words[60000 + i * 60 + k * 6:60000 + i * 60 + k * 6 + 6]) for k in range(8)]
        if i % 2 == 0:
            docs[f"c{i:03d}"] = list(docs[f"s{i:03d}"])
    for i in range(1, 120, 5):
        edited = []
        for line in docs[f"o{i:03d}"]:
            w = line.split()
            w[rng.randrange(len(w))] = "edited"
            edited.append(" ".join(w))
        docs[f"n{i:03d}"] = edited
    items = sorted(docs.items())
    rng.shuffle(items)
    root = tmp_path_factory.mktemp("in")
    paths = []
    for s in range(4):
        p = root / f"shard-{s}.jsonl"
        p.write_text("".join(json.dumps({"id": k, "text": "\n".join(v)}) + "\n" for k, v in items[s::4]))
        paths.append(str(p))
    return paths


def outcome(out) -> tuple:
    docs = read_documents(str(out)).to_pylist()
    rej = read_rejects(str(out)).to_pylist()
    dups = eio.read_parquet(f"{out}/duplicates.parquet").to_pylist()
    key = lambda r: r["id"]  # noqa: E731
    return (sorted(({k: v for k, v in r.items()} for r in docs), key=key),
            sorted(((r["id"], r["operator"], r["reason"]) for r in rej)),
            sorted(dups, key=key))


def test_outputs_do_not_depend_on_the_partition_count(inputs, tmp_path, monkeypatch):
    total = sum(os.path.getsize(p) for p in inputs)
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total // 3 + 1)
    results = {}
    for parts in (1, 5, "auto"):
        out = tmp_path / f"out-{parts}"
        stats = run_job(job(parts), inputs=inputs, out=str(out))
        assert stats["total"]["accounting_ok"]
        assert {stats["global"][n]["partitions"] for n in STEPS} == {3 if parts == "auto" else parts}
        results[parts] = outcome(out)
    docs, rejects, dups = results[1]
    # every step had work to do: a boilerplate line, exact copies, near-duplicates
    assert {op for _, op, _ in rejects} == set(STEPS)
    assert any(r["line_dedup_nlines"] < r["line_dedup_original_nlines"] for r in docs)
    assert len(dups) >= 10
    assert results[5] == results[1]
    assert results["auto"] == results[1]

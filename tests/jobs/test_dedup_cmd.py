"""`decant dedup`: the job it builds, and a run that removes exactly the edited copies."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from engine.io import read_parquet
from jobs.cli import app
from jobs.dedup_cmd import dedup_job
from support import wikitext_words


def test_decant_dedup_command_end_to_end(shared_data, tmp_path):
    """`decant dedup` runs reader -> minhash_dedup -> writer through run_job."""
    vocab = wikitext_words(shared_data)
    src = tmp_path / "docs.jsonl"
    with open(src, "w") as f:
        for i in range(60):
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(vocab[i * 400:i * 400 + 300])}) + "\n")
        for i in range(10):
            w = vocab[i * 400:i * 400 + 300]
            w[100] = "edited"
            f.write(json.dumps({"id": f"copy{i}", "text": " ".join(w)}) + "\n")
    spec = dedup_job([str(src)], str(tmp_path / "o"), bands=10, rows=11)
    assert spec["pipeline"] == [{"minhash_dedup": {"threshold": 0.8, "ngram": 5, "num_perm": 112, "partitions": "auto",
                                                   "verify": False, "bands": 10, "rows": 11}}]
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["dedup", "-i", str(src), "-o", str(out), "--threshold", "0.8", "--ngram", "5",
                                 "--num-perm", "112", "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["operators"]["minhash_dedup"]["dropped"] == {"near_duplicate": 10}
    d = read_parquet(str(out / "duplicates.parquet"))
    assert sorted(zip(d.column("id").to_pylist(), d.column("kept_id").to_pylist())) == \
        sorted((f"copy{i}", f"d{i}") for i in range(10))


def test_partitions_auto_unless_given(tmp_path):
    """`auto` (the plan resolves it from the input size: tests/engine/test_partition_count.py) unless given."""
    files = [str(tmp_path / "p.jsonl")]
    assert dedup_job(files, str(tmp_path / "o"))["pipeline"][0]["minhash_dedup"]["partitions"] == "auto"
    assert dedup_job(files, str(tmp_path / "o"), partitions=4)["pipeline"][0]["minhash_dedup"]["partitions"] == 4

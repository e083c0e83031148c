"""The document writers: JSONL parts rolled by size, partition values that are not strings."""
from __future__ import annotations

import json

from engine.documents import TEXT
from jobs.runjob import run_job
from operators.writers import read_documents
from support import drop_sevens_job


def test_jsonl_output_rolls_files_by_size(shards, tmp_path):
    out = tmp_path / "out"
    run_job(drop_sevens_job(output={"format": "jsonl", "max_file_bytes": 4000}), inputs=shards, out=str(out))
    parts = sorted((out / "documents").rglob("*.jsonl.gz"))
    assert len(parts) > 3  # several parts per shard: the size limit rolled them
    assert {p.name.split("-")[1] for p in parts} == {"000000", "000001", "000002"}
    docs = read_documents(str(out))
    assert docs.num_rows == 108
    assert all(t for t in docs.column(TEXT).to_pylist())


def test_input_language_column_that_is_not_a_string(tmp_path):
    # a JSONL input's own `language` field is kept as a column and partitions the output: an int
    # there crashed the writer (str.strip on a number) and failed the whole job
    src = tmp_path / "lang.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"hello world {i}", "language": 5}) + "\n"
                           for i in range(4)))
    out = tmp_path / "out"
    stats = run_job({"pipeline": [], "output": {"partition_by": ["language"]}, "executor": {"workers": 1}},
                    inputs=[str(src)], out=str(out))
    assert stats["total"]["documents_kept"] == 4 and stats["total"]["accounting_ok"]
    assert list((out / "documents").iterdir())[0].name == "language=5"

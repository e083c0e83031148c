"""Partition folder names: bounded, collision-free, reversible; exact values kept in the files."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from engine.partitioning import MAX_NAME, NULL_NAME, folder_value, value_of
from jobs.runjob import run_job
from operators.writers import read_documents

VALUES = ["en", "a/b", "a_b", "a b", "..", ".", "~", "x~y", "", None, NULL_NAME, "%empty", "zh-Hant",
          "ß", "日本語", "a" * 300, "a" * 299 + "b", 5]


def test_folder_names_are_distinct_safe_and_bounded():
    names = [folder_value(v) for v in VALUES]
    assert len(set(names)) == len(VALUES)  # no two values share a folder
    for n in names:
        assert n and "/" not in n and n not in (".", "..") and len(n) <= MAX_NAME
        assert all(c.isascii() for c in n)


@pytest.mark.parametrize("value", [v for v in VALUES if not (isinstance(v, str) and len(v) > 90)])
def test_short_values_read_back_exactly(value):
    expected = None if value is None else str(value)
    assert value_of(folder_value(value)) == expected


def test_long_values_are_cut_with_a_hash_of_the_whole():
    a, b = folder_value("a" * 300), folder_value("a" * 299 + "b")
    assert a != b and "~" in a and a.split("~")[0] == b.split("~")[0]
    assert value_of(a).startswith("aaaa")


def test_job_with_hostile_partition_values(tmp_path):
    """300-character, slash, underscore, null and numeric language values: the job writes them all
    into distinct folders, keeps the exact values in the files, and pyarrow reads the tree back."""
    langs = ["x" * 300, "a/b", "a_b", None, "en"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"text {i}", "language": langs[i % 5], "bucket": i % 3})
                           + "\n" for i in range(20)))
    out = tmp_path / "out"
    stats = run_job({"pipeline": [], "output": {"partition_by": ["language", "bucket"]}, "executor": {"workers": 1}},
                    inputs=[str(src)], out=str(out))
    assert stats["total"]["documents_kept"] == 20 and stats["total"]["accounting_ok"]
    lang_dirs = sorted(p.name for p in (out / "documents").iterdir())
    assert len(lang_dirs) == 5 and "language=a%2Fb" in lang_dirs and "language=a_b" in lang_dirs
    docs = read_documents(str(out))
    got = {(r["id"], r["language"], r["bucket"]) for r in docs.to_pylist()}
    assert got == {(f"d{i}", langs[i % 5], i % 3) for i in range(20)}
    # Hive-style: pyarrow decodes the folder names itself
    hive = ds.HivePartitioning(pa.schema([("language", pa.string())]), segment_encoding="uri")
    assert hive.parse("/language=a%2Fb/").equals(ds.field("language") == "a/b")

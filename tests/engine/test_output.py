"""engine.output: small pieces of batches are held and written as one row group per file."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import engine.output as output
import operators.writers  # noqa: F401 - registers the parquet writer
from engine.output import DocumentWriter


def _batch(lang: list[str], start: int) -> pa.RecordBatch:
    n = len(lang)
    return pa.RecordBatch.from_pydict({"id": [str(start + i) for i in range(n)], "text": ["x" * 50] * n,
                                       "language": lang})


def test_partition_pieces_are_one_row_group_per_file(tmp_path):
    w = DocumentWriter(str(tmp_path), 0, "parquet", 1 << 30, ["language"])
    for k in range(20):  # each batch cut into three pieces, one per language
        w.write(_batch(["en", "fr", "de"] * 5, k * 15))
    files = w.publish(str(tmp_path))
    assert len(files) == 3
    for f in files:
        meta = pq.ParquetFile(f).metadata
        assert meta.num_row_groups == 1 and meta.num_rows == 100
    ids = sorted(int(i) for f in files for i in pq.read_table(f).column("id").to_pylist())
    assert ids == list(range(300))


def test_held_batches_are_bounded_per_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "HELD_BYTES", 4000)
    w = DocumentWriter(str(tmp_path), 0, "parquet", 1 << 30, ["language"])
    for k in range(40):
        w.write(_batch(["en", "fr", "de", "es"] * 4, k * 16))
        assert sum(f.held_bytes for f in w.files.values()) <= 4000 + 4 * _batch(["en"] * 4, 0).nbytes
    files = w.publish(str(tmp_path))
    groups = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    assert 4 < groups < 160  # flushed in several row groups, far fewer than one per piece
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 640

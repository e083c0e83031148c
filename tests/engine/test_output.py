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


def test_each_partition_keeps_its_rows_in_input_order(tmp_path):
    """The rows of a batch are grouped by partition in one take: within a partition they stay in
    the order they came, batch after batch."""
    w = DocumentWriter(str(tmp_path), 0, "parquet", 1 << 30, ["language"])
    langs = ["de", "en", "fr", "en", "de", "de", "fr", "en", "es"]
    for k in range(3):
        w.write(_batch(langs, k * len(langs)))
    files = w.publish(str(tmp_path))
    tables = [pq.read_table(f) for f in files]
    got = {t.column("language")[0].as_py(): t.column("id").to_pylist() for t in tables}
    want: dict[str, list[str]] = {}
    for k in range(3):
        for i, lang in enumerate(langs):
            want.setdefault(lang, []).append(str(k * len(langs) + i))
    assert got == want


def test_document_files_keep_no_statistics_of_the_text(tmp_path):
    """Min/max of the text column are no use to a reader and were half of a small file: not
    written; the other columns keep theirs (a reader may filter on them)."""
    w = DocumentWriter(str(tmp_path), 0, "parquet", 1 << 30, ["language"])
    w.write(_batch(["en", "fr"] * 3, 0))
    for f in w.publish(str(tmp_path)):
        rg = pq.ParquetFile(f).metadata.row_group(0)
        stats = {rg.column(i).path_in_schema: rg.column(i).is_stats_set for i in range(rg.num_columns)}
        assert stats == {"id": True, "text": False, "language": True}

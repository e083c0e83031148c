"""The Parquet reader: round trip, CCNet-style columns, invalid UTF-8, corrupt files."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq

from engine.documents import DROP_REASON
from operators.readers import ParquetReader
from support import read_shard


def test_parquet_round_trip(shared_data, tmp_path):
    _, rows, _ = read_shard(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz")
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"], "url": r["url"], "n": i,
                                   "source": r["input_source"]} for i, r in enumerate(rows)])
    p = tmp_path / "docs.parquet"
    pq.write_table(table, p, row_group_size=3)
    reader, prow, batches = read_shard(p, batch_size=4)
    assert isinstance(reader, ParquetReader)
    assert [r["id"] for r in prow] == [r["id"] for r in rows]
    assert [r["text"] for r in prow] == [r["text"] for r in rows]
    assert [r["n"] for r in prow] == list(range(10))
    assert prow[0]["input_source"] == "common-crawl" and prow[0]["source"] == "docs.parquet:1"
    assert all(b.schema == batches[0].schema for b in batches)
    assert batches[0].schema.field("n").type == pa.int64()
    # CCNet-style parquet: raw_content, digest, no id
    t2 = pa.table({"raw_content": ["a", None], "digest": ["sha1:X", None], "date_download": ["d1", "d2"]})
    p2 = tmp_path / "ccnet.bin"
    pq.write_table(t2, p2)
    reader, prow, _ = read_shard(p2)
    assert prow[0]["id"] == "sha1:X" and prow[0]["text"] == "a" and prow[0]["date"] == "d1"
    assert re.fullmatch(r"[0-9a-f]{40}", prow[1]["id"]) and prow[1][DROP_REASON] == "missing_text"


def test_parquet_invalid_utf8_text(tmp_path):
    # A string column with invalid UTF-8 (Parquet readers do not validate) reached the operators,
    # whose to_pylist() raised; a binary text column with one bad value came out as "b'...'" reprs.
    data = b"good textbad\xff text"
    offsets = pa.array([0, 9, len(data)], pa.int32()).buffers()[1]
    bad_str = pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(data)])
    pq.write_table(pa.table({"id": ["a", "b"], "text": bad_str}), tmp_path / "s.parquet")
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array([b"hello", b"bad\xff"], pa.binary())}),
                   tmp_path / "b.parquet")
    for name in ("s.parquet", "b.parquet"):
        reader, rows, batches = read_shard(tmp_path / name)
        assert reader.errors == []
        for b in batches:
            b.validate(full=True)
        assert [r["text"] for r in rows][1].startswith("bad\ufffd")
    assert rows[0]["text"] == "hello"


def test_corrupt_parquet_reports_error(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1" + b"\x00" * 100)
    reader, rows, _ = read_shard(p)
    assert rows == [] and len(reader.errors) == 1

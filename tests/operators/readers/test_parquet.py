"""The Parquet reader: round trip, CCNet-style columns, invalid UTF-8, corrupt files."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq

from engine.documents import DROP_REASON
from operators.readers import ParquetReader
from operators.readers.base import stable_id
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


def test_corrupt_row_group_costs_only_its_rows(shared_data, tmp_path):
    """Bytes flipped inside one row group's compressed text column: that group's rows (the footer
    says how many) are reject rows named by row number, and the row groups after it are read."""
    _, rows, _ = read_shard(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz")
    _, more, _ = read_shard(shared_data / "ccnet-reference/cc_en_head-0174.jsonl.gz")
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"], "url": r["url"]} for r in rows + more])
    good = tmp_path / "good" / "docs.parquet"
    good.parent.mkdir()
    pq.write_table(table, good, row_group_size=5, compression="zstd")
    chunk = pq.ParquetFile(good).metadata.row_group(1).column(1)  # rows 6..10, column "text"
    assert chunk.path_in_schema == "text"
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data = bytearray(good.read_bytes())
    for i in range(start + 60, start + 260):
        data[i] ^= 0x5A
    bad = tmp_path / "docs.parquet"
    bad.write_bytes(bytes(data))
    reader, got, batches = read_shard(bad, batch_size=3)
    _, want, _ = read_shard(good, batch_size=3)
    assert reader.errors == [] and len(got) == 20
    assert all(b.schema == batches[0].schema for b in batches)
    lost = [r for r in got if r[DROP_REASON]]
    assert [(r["source"], r[DROP_REASON]) for r in lost] == [(f"docs.parquet:{n}", "corrupt_row_group")
                                                             for n in range(6, 11)]
    assert all(r["id"] == stable_id("docs.parquet", n) for r, n in zip(lost, range(6, 11)))
    assert [(r["id"], r["text"], r["source"]) for r in got if not r[DROP_REASON]] == \
        [(r["id"], r["text"], r["source"]) for i, r in enumerate(want) if not 5 <= i < 10]


def test_split_at_row_groups_reads_what_the_whole_file_reads(shared_data, tmp_path):
    """Ranges of whole row groups: together every row once, with the ids, `source` and fallback ids
    of the whole file's read; a file of one row group is not split."""
    from engine.reader import ShardRange
    _, rows, _ = read_shard(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz")
    _, more, _ = read_shard(shared_data / "ccnet-reference/cc_en_head-0174.jsonl.gz")
    table = pa.Table.from_pylist([{"id": r["id"] if i % 4 else None, "text": r["text"]}
                                  for i, r in enumerate(rows + more)])
    p = tmp_path / "docs.parquet"
    pq.write_table(table, p, row_group_size=3)
    groups = pq.ParquetFile(p).metadata.num_row_groups
    assert groups == 7
    reader = ParquetReader()
    ranges = reader.split(str(p), 1)
    assert [(r.start, r.end, r.first_ordinal) for r in ranges] == \
        [(g, g + 1 if g < groups - 1 else -1, 3 * g) for g in range(groups)]
    whole = [r for b in ParquetReader().read(str(p), 2) for r in b.to_pylist()]
    size = p.stat().st_size
    for target in (1, size // 3, size // 2):
        parts = ParquetReader().split(str(p), target)
        assert parts[0].start == 0 and parts[-1].end == -1
        assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
        got = [r for part in parts for b in ParquetReader().read(str(p), 2, part=part) for r in b.to_pylist()]
        assert got == whole
    assert ParquetReader().split(str(p), size * 2) is None  # one range: read whole
    one = tmp_path / "one.parquet"
    pq.write_table(table, one)
    assert ParquetReader().split(str(one), 1) is None
    assert ParquetReader().read(str(p), 5, part=ShardRange(2, 3, 6, 6)).__next__().column("source").to_pylist() == \
        [f"docs.parquet:{n}" for n in (7, 8, 9)]

"""Splitting JSONL into line-aligned ranges: each range reads exactly what the unsplit read gives
for its lines (rows, ids, sources, rejects, column types, counts), whatever the range size."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pytest

from engine.documents import DROP_REASON
from operators.readers import JsonlReader


def read_whole(path, batch_size=7, arrow=False, **params):
    reader = JsonlReader(**params)
    reader._arrow = arrow
    batches = list(reader.read(str(path), batch_size))
    return reader, batches


def read_split(path, target, batch_size=7, arrow=True, **params):
    """(ranges, rows, batches, summed stats, errors) reading every range with a fresh reader
    (`arrow` False: by the Python path only)."""
    ranges = JsonlReader(**params).split(str(path), target)
    assert ranges is not None
    rows, batches, errors = [], [], []
    stats: dict = {}
    for k, part in enumerate(ranges):
        reader = JsonlReader(**params)
        reader._arrow = arrow
        got = list(reader.read(str(path), batch_size, part))
        batches += got
        part_rows = [r for b in got for r in b.to_pylist()]
        if k + 1 < len(ranges):  # the next range's ordinal counts this range's rows
            assert len(part_rows) == ranges[k + 1].first_ordinal - part.first_ordinal
        rows += part_rows
        errors += reader.errors
        for group, counts in reader.stats.items():
            g = stats.setdefault(group, {})
            for k, n in counts.items():
                g[k] = g.get(k, 0) + n
    return ranges, rows, batches, stats, errors


def drifting_lines(n: int = 60) -> list[bytes]:
    """Documents with every kind of awkward line between them, and fields whose type changes after
    the first records (the kinds come from the head: a range in the tail must keep them)."""
    out = [b"\xef\xbb\xbf" + json.dumps({"id": "bom", "text": "first", "score": 1, "flag": True}).encode()]
    for i in range(n):
        rec = {"text": f"doc {i} " + "w" * (i % 13), "score": i, "flag": i % 2 == 0, "tag": "t"}
        if i % 3:
            rec["id"] = f"d{i}"
        if i > n // 2:  # drift: the tail has other types than the head
            rec["score"] = f"s{i}"
            rec["flag"] = i
            rec["tag"] = {"nested": i}
            rec["late"] = i
        out.append(json.dumps(rec).encode())
        if i % 7 == 0:
            out.append(b"")
        if i % 11 == 0:
            out.append(b"  \t\r")
        if i % 9 == 0:
            out.append(json.dumps({"id": f"crlf{i}", "text": "windows"}).encode() + b"\r")
        if i % 17 == 0:
            out += [b"{not json", b"[1, 2]", b'{"id": "l1", "text": "caf\xe9"}', b'{"text": "x' + b"y" * 500 + b'"}',
                    b" " * 600, b"\x1f\x8b not gzip", b'{"text": "cut \\ud83d emoji"}']
    return out


@pytest.fixture
def drifting(tmp_path, monkeypatch):
    import operators.readers.jsonl as jsonl_mod
    monkeypatch.setattr(jsonl_mod, "INFER_ROWS", 8)
    p = tmp_path / "drift.jsonl"
    p.write_bytes(b"\n".join(drifting_lines()) + b"\n" + json.dumps({"text": "no newline at the end"}).encode())
    return p


@pytest.mark.parametrize("target,scan_chunk", [(1, 5), (40, 1 << 20), (97, 13), (256, 1 << 20), (1000, 64),
                                               (3000, 1 << 20)])
@pytest.mark.parametrize("arrow", [False, True])
def test_ranges_read_exactly_what_the_whole_file_gives(drifting, target, scan_chunk, arrow, monkeypatch):
    import operators.readers.jsonl_ranges as ranges_mod
    monkeypatch.setattr(ranges_mod, "SCAN_CHUNK", scan_chunk)  # line starts on scan chunk edges
    whole, batches = read_whole(drifting, max_bytes=400)  # the reference: the Python path, unsplit
    rows = [r for b in batches for r in b.to_pylist()]
    ranges, split_rows, split_batches, stats, errors = read_split(drifting, target, arrow=arrow, max_bytes=400)
    assert len(ranges) > 1
    assert repr(split_rows) == repr(rows)
    assert {b.schema for b in split_batches} == {batches[0].schema}
    assert stats == whole.stats and errors == whole.errors == []
    assert ranges[0].start == 0 and ranges[-1].end == -1
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    data = drifting.read_bytes()
    assert all(data[r.start - 1:r.start] == b"\n" for r in ranges[1:])


def test_range_in_the_tail_keeps_the_types_of_the_head(drifting):
    _, batches = read_whole(drifting, max_bytes=400)
    types = {f.name: f.type for f in batches[0].schema}
    assert types["score"] == pa.int64() and types["flag"] == pa.bool_() and types["tag"] == pa.string()
    assert "late" not in types  # a field first seen after the head is counted as coerced, not a column
    ranges = JsonlReader(max_bytes=400).split(str(drifting), 400)
    tail = ranges[-2]
    reader = JsonlReader(max_bytes=400)
    got = list(reader.read(str(drifting), 1000, tail))
    assert {b.schema for b in got} == {batches[0].schema}
    rows = [r for b in got for r in b.to_pylist()]
    docs = [r for r in rows if r[DROP_REASON] is None and r["text"].startswith("doc")]
    assert docs and all(r["score"] is None for r in docs)  # "s40" cannot be an int: lost, as unsplit
    assert reader.stats["coerced"]["late"] == len(docs)


def test_ordinals_and_lines_count_blank_lines(tmp_path):
    p = tmp_path / "blank.jsonl"
    lines = []
    for i in range(30):
        lines += [json.dumps({"text": f"t{i}"}).encode(), b"", b" \r"]
    p.write_bytes(b"\n".join(lines) + b"\n")
    starts = set()
    for target in range(40, 60):
        ranges = JsonlReader().split(str(p), target)
        assert len(ranges) > 5
        for r in ranges:  # a document line, then two blank ones: rows before = document lines before
            assert r.first_ordinal == (r.first_record + 2) // 3
            starts.add(r.first_record % 3)
    assert starts == {0, 1, 2}


def test_small_and_gzip_files_are_not_split(tmp_path):
    p = tmp_path / "small.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert JsonlReader().split(str(p), 1 << 20) is None
    g = tmp_path / "big.jsonl.gz"
    g.write_bytes(gzip.compress(b"".join(b'{"text": "%d"}\n' % i for i in range(5000))))
    assert JsonlReader().split(str(g), 100) is None


@pytest.mark.parametrize("target", [1, 97, 300])
def test_split_does_not_depend_on_the_scan_chunks(drifting, target, monkeypatch):
    """Cuts, lines and rows before them are the file's, whatever chunks the scan reads it in
    (lines, blank lines and too long whitespace lines cut at chunk edges)."""
    import operators.readers.jsonl_ranges as ranges_mod
    want = JsonlReader(max_bytes=400).split(str(drifting), target)
    assert len(want) > 3
    for chunk in (5, 13, 64, 601, 4096):
        monkeypatch.setattr(ranges_mod, "SCAN_CHUNK", chunk)
        assert JsonlReader(max_bytes=400).split(str(drifting), target) == want


def test_ranges_of_a_clean_file_are_read_by_pyarrow_and_match_the_whole(tmp_path, monkeypatch):
    import operators.readers.jsonl as jsonl_mod
    monkeypatch.setattr(jsonl_mod, "INFER_ROWS", 30)
    p = tmp_path / "clean.jsonl"
    p.write_text("".join(json.dumps({"id": f"d{i}", "text": "t " * (i % 50), "n": i, "x": i / 3}) + "\n"
                         for i in range(3000)))
    _, batches = read_whole(p, 64)
    ranges, rows, _, stats, errors = read_split(p, 20_000, batch_size=64)
    assert len(ranges) > 3 and rows == [r for b in batches for r in b.to_pylist()] and errors == []
    for part in ranges:
        reader = JsonlReader()
        list(reader.read(str(p), 64, part))
        assert reader._arrow_rows > 0


def test_a_file_rewritten_in_place_gets_its_own_head_kinds(tmp_path):
    p = tmp_path / "rewritten.jsonl"
    for value, typ in ((7, pa.int64()), ("seven and more", pa.string())):
        p.write_text("".join(json.dumps({"id": f"d{i}", "text": "t " * 40, "v": value}) + "\n" for i in range(3000)))
        tail = JsonlReader().split(str(p), 50_000)[-1]
        batches = list(JsonlReader().read(str(p), 64, tail))
        assert batches[0].schema.field("v").type == typ

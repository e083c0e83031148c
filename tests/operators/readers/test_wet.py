"""The WET reader: conversion records, the WARC/WET pair, WAT files without documents."""
from __future__ import annotations

import re

from operators.readers import WetReader
from support import read_shard


def test_wet_ccnet_sample(shared_data):
    reader, rows, _ = read_shard(shared_data / "wet/ccnet-sample.wet.txt")
    assert isinstance(reader, WetReader)
    assert reader.stats["records"] == {"warcinfo": 1, "conversion": 3}
    assert reader.stats["skipped"] == {"warcinfo": 1}
    assert reader.errors == []
    assert [r["url"] for r in rows] == ["http://sample_english.com", "http://sample_chinese.zh",
                                        "http://sample_russian.ru"]
    assert rows[0]["text"].startswith("Famous Mark Twain Quotes\n")
    assert rows[0]["text"].endswith("Truth isn't.")
    assert "WARC" not in rows[0]["text"]
    assert re.search(r"[\u4e00-\u9fff]{4}", rows[1]["text"])
    assert re.search(r"[А-Яа-я]{4}", rows[2]["text"])
    # the sample reuses one WARC-Record-ID: ids stay unique within the shard
    assert len({r["id"] for r in rows}) == 3
    assert rows[0]["id"] == "cd61b0b3-d9b0-466c-9a5e-99c191f8d2e1"


def test_wet_and_warc_pair_agree(shared_data):
    _, wet_rows, _ = read_shard(shared_data / "wet/cc-main-2024-22-whirlwind.warc.wet.gz")
    _, warc_rows, _ = read_shard(shared_data / "warc/cc-main-2024-22-whirlwind.warc.gz")
    (w,) = wet_rows
    (h,) = warc_rows
    assert w["url"] == h["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert w["text"].startswith("Escopete - Biquipedia") and w["html"] is None
    assert "Escopete" in h["html"]
    assert w["id"] == "ba729a40-ff84-4085-8d48-0a5b2ee0c42d"


def test_wat_is_metadata_only(shared_data):
    path = shared_data / "wet/cc-main-2024-22-whirlwind.warc.wat.gz"
    for fmt in ("auto", "warc", "wet"):
        reader, rows, _ = read_shard(path, fmt)
        assert rows == [] and reader.errors == []
        assert reader.stats["records"] == {"warcinfo": 1, "metadata": 1}


def test_wet_record_with_unparseable_header(shared_data, tmp_path):
    """A header line that is no `Name: value` field in the second conversion record: that record is
    a `bad_record_header` row at its offset, the records around it read as in the intact file."""
    data = (shared_data / "wet/ccnet-sample.wet.txt").read_bytes()
    starts = [m.start() for m in re.finditer(rb"(?m)^WARC/1\.0\r?$", data)]
    second = starts[2]  # warcinfo, then the conversion records
    line_end = data.index(b"\n", second) + 1
    junk = b"garbage without a colon\r\n"
    p = tmp_path / "damaged.wet.txt"
    p.write_bytes(data[:line_end] + junk + data[line_end:])
    reader, rows, _ = read_shard(p)
    _, want, _ = read_shard(shared_data / "wet/ccnet-sample.wet.txt")
    assert reader.errors == []
    assert [(r["source"], r["_drop_reason"]) for r in rows] == [
        (f"damaged.wet.txt:{starts[1]}", None), (f"damaged.wet.txt:{second}", "bad_record_header"),
        (f"damaged.wet.txt:{starts[3] + len(junk)}", None)]
    assert [rows[0]["text"], rows[2]["text"]] == [want[0]["text"], want[2]["text"]]


def test_wet_record_with_damaged_version_line(shared_data, tmp_path):
    """A WET block runs to the next `WARC/1.0` line; when that line is damaged, the record after it
    used to be read as the end of this one's text. Now it is a `bad_record_header` row, and the
    text before it is the intact file's."""
    data = (shared_data / "wet/ccnet-sample.wet.txt").read_bytes()
    third = [m.start() for m in re.finditer(rb"(?m)^WARC/1\.0\r?$", data)][3]
    p = tmp_path / "damaged.wet.txt"
    p.write_bytes(data[:third] + b"WARC/1.\x00" + data[third + 8:])
    reader, rows, _ = read_shard(p)
    _, want, _ = read_shard(shared_data / "wet/ccnet-sample.wet.txt")
    assert reader.errors == []
    assert [r["text"] for r in rows[:2]] == [r["text"] for r in want[:2]]
    assert (rows[2]["source"], rows[2]["_drop_reason"]) == (f"damaged.wet.txt:{third}", "bad_record_header")
    assert len(rows) == 3


def test_wet_block_keeps_lines_that_only_look_like_record_starts(shared_data, tmp_path):
    """Lines are passed in runs, not one by one: a text line starting "WARC/" that is no version line,
    a line longer than the 64 KB look-ahead (all blanks, then a short line with a colon-free word
    before a `WARC-` field: a damaged record start only after a blank line), blank lines, all stay in
    the text; the record after them reads as in the intact file."""
    data = (shared_data / "wet/ccnet-sample.wet.txt").read_bytes()
    starts = [m.start() for m in re.finditer(rb"(?m)^WARC/1\.0\r?$", data)]
    head_end = data.index(b"\n\n", starts[1]) + 2
    body = (b"WARC/x is a version\nplain line\n\n \t\n" + b"y" * 70000 + b"\n" + b" " * 66000 +
            b"x\nword\nWARC-Date: in the text\nlast line")
    p = tmp_path / "tricky.wet.txt"
    p.write_bytes(data[:head_end] + body + b"\n\n" + data[starts[2]:])
    reader, rows, _ = read_shard(p)
    _, want, _ = read_shard(shared_data / "wet/ccnet-sample.wet.txt")
    assert reader.errors == []
    assert rows[0]["text"] == body.decode()
    assert [r["text"] for r in rows[1:]] == [r["text"] for r in want[1:]]

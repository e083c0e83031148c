"""Opening a reader by name or by sniffing: registry, options, fsspec paths, every format on damage."""
from __future__ import annotations

import collections

import fsspec
import pytest

from engine.registry import READERS
from operators.readers import WarcReader, detect_format, open_reader
from support import read_shard


def test_readers_registered():
    assert {"warc", "wet", "jsonl", "parquet"} <= set(READERS)
    assert READERS["warc"].content_column == "html"
    assert READERS["wet"].content_column == "text"


def test_unknown_option_is_an_error_but_other_readers_options_are_ignored(shared_data):
    path = shared_data / "warc/cc-main-2024-22-whirlwind.warc.gz"
    with pytest.raises(ValueError, match="max_byte"):
        open_reader(str(path), "warc", max_byte=5)
    r = open_reader(str(path), "warc", text_field="raw_content", max_bytes=123)
    assert isinstance(r, WarcReader) and r.max_bytes == 123
    with pytest.raises(ValueError):
        WarcReader(text_field="x")


def test_ids_are_stable_across_runs(shared_data):
    for name in ("warc/archive-org-2008.warc.gz", "warc/edge/warcio-example.arc", "wet/ccnet-sample.wet.txt"):
        a = [r["id"] for r in read_shard(shared_data / name, batch_size=7)[1]]
        b = [r["id"] for r in read_shard(shared_data / name, batch_size=1000)[1]]
        assert a == b and len(set(a)) == len(a) and a


def test_every_edge_file_reads_without_raising(shared_data):
    seen = {}
    for folder in ("warc", "warc/edge", "wet"):
        for p in sorted((shared_data / folder).iterdir()):
            if p.is_dir():
                continue
            fmt = detect_format(str(p))
            reader = open_reader(str(p), fmt)
            n = sum(b.num_rows for b in reader.read(str(p), 16))
            seen[p.name] = (n, list(reader.errors), dict(reader.stats["records"]))
    assert len(seen) == 30
    assert seen["clipped.warc.gz"][0] == 1
    assert seen["clipped.warc.gz"][1] and "truncated gzip member at offset 0" in seen["clipped.warc.gz"][1][0]
    assert len(seen["clipped.warc.gz"][1]) == 1
    assert seen["block-sized-records.warc.gz"] == (0, [], {"unknown": 3})
    assert seen["warcio-bad.arc"][1]  # length -1: reported, not raised
    # a gzip that is one member for the whole file, and members that cut records: read in full
    assert seen["warcio-example-bad.warc.gz.bad"][0] == 2 and seen["warcio-example-bad.warc.gz.bad"][1] == []
    assert seen["warcio-example-wrong-chunks.warc.gz"][2] == {"response": 1, "request": 1}
    # a record shorter than its declared length at the end of the file
    assert "truncated" in seen["warcio-example-space-in-url.arc"][1][0]


def test_memory_filesystem_path(shared_data):
    fs = fsspec.filesystem("memory")
    for name in ("cc-main-2020-34-sample.warc.gz", "ccnet-sample.wet.txt"):
        folder = "warc" if name.endswith("gz") else "wet"
        with fs.open(f"/readers-test/{name}", "wb") as f:
            f.write((shared_data / folder / name).read_bytes())
    try:
        url = "memory://readers-test/cc-main-2020-34-sample.warc.gz"
        assert detect_format(url) == "warc"
        reader, rows, _ = read_shard(url)
        local = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz")[1]
        assert rows == local and len(local) == 16
        wet = "memory://readers-test/ccnet-sample.wet.txt"
        assert detect_format(wet) == "wet" and len(read_shard(wet)[1]) == 3
    finally:
        fs.rm("/readers-test", recursive=True)


def test_damaged_copies_never_raise(shared_data, tmp_path):
    """Cut, bit-flipped, zeroed and spliced copies of real shards, read with every reader: no
    exception escapes read(), every row still has an id and a source in the damaged shard, and
    what went wrong is reported as error messages."""
    import random

    rnd = random.Random(7)
    formats = ("auto", "warc", "wet", "jsonl", "parquet")
    rows_read, errors = collections.Counter(), collections.Counter()
    srcs = [shared_data / n for n in ("warc/cc-main-2024-22-whirlwind.warc.gz", "warc/edge/warcio-example.arc.gz",
                                      "warc/edge/warcio-example.warc", "wet/ccnet-sample.wet.txt",
                                      "wet/cc-main-2024-22-whirlwind.warc.wet.gz",
                                      "ccnet-reference/cc_en_head-0091.jsonl.gz")]
    for i in range(80):
        data = bytearray(rnd.choice(srcs).read_bytes())
        op = i % 4
        j = rnd.randrange(len(data))
        if op == 0:
            data = data[:j]
        elif op == 1:
            for _ in range(rnd.randint(1, 20)):
                k = rnd.randrange(len(data))
                data[k] ^= rnd.randrange(1, 256)
        elif op == 2:
            data[j: j + 300] = b"\0" * len(data[j: j + 300])
        else:
            data = data[:j] + data[j // 2:]
        p = tmp_path / f"d{i}"
        p.write_bytes(bytes(data))
        for fmt in formats:
            reader, rows, _ = read_shard(p, fmt, batch_size=5)
            assert all(r["id"] and r["source"].startswith(f"d{i}:") for r in rows)
            assert all(isinstance(e, str) and e for e in reader.errors), reader.errors
            rows_read[fmt] += len(rows)
            errors[fmt] += len(reader.errors)
    # the damage left something to read and something to report: the asserts above saw rows from
    # every reader whose format is among the sources (no Parquet source), and errors from every reader
    assert all(rows_read[fmt] > 0 for fmt in ("auto", "warc", "wet", "jsonl")), rows_read
    assert all(errors[fmt] > 0 for fmt in formats), errors

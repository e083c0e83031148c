"""WARC and WET files split at gzip members: the ranges together read exactly what the whole file
reads (rows, ids, `source`, counts, errors), on real files, damaged ones, and WET."""
from __future__ import annotations

import gzip
import re
import zlib

import pytest

from engine.reader import open_reader

SHARED = ["warc/cc-main-2020-34-sample.warc.gz", "warc/archive-org-2008.warc.gz", "warc/clueweb09-ja-eucjp.warc.gz",
          "warc/web-2024-sample-0000.warc.gz", "warc/edge/clipped.warc.gz", "warc/edge/pdf-captures.warc.gz",
          "warc/edge/warcio-example-bad-non-chunked.warc.gz", "wet/cc-main-2024-22-whirlwind.warc.wet.gz",
          "wet/cc-main-2024-22-whirlwind.warc.wat.gz"]


def read_all(path: str, part=None) -> tuple[list[dict], list[str], dict]:
    reader = open_reader(path)
    rows = [r for b in (reader.read(path, 7) if part is None else reader.read(path, 7, part=part))
            for r in b.to_pylist()]
    return rows, reader.errors, reader.stats


def assert_split_reads_the_same(path: str, targets=(1, 20_000)) -> int:
    """Returns how many ranges the smallest target gave."""
    whole, errors, stats = read_all(path)
    most = 0
    for target in targets:
        parts = open_reader(path).split(path, target)
        if not parts:
            continue
        most = max(most, len(parts))
        assert parts[0].start == 0 and parts[-1].end == -1
        assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
        rows, errs, counts = [], [], {}
        for p in parts:
            assert p.first_ordinal == len(rows)
            r, e, s = read_all(path, p)
            rows += r
            errs += e
            for g, c in s.items():
                for k, v in c.items():
                    counts.setdefault(g, {})[k] = counts.setdefault(g, {}).get(k, 0) + v
        assert rows == whole
        assert errs == errors
        assert {g: c for g, c in counts.items() if c} == {g: c for g, c in stats.items() if c}
    return most


@pytest.mark.parametrize("rel", SHARED)
def test_real_files(shared_data, rel):
    assert_split_reads_the_same(str(shared_data / rel))


def members(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[pos:]))
        pos = len(data) - len(d.unused_data)
    return out


@pytest.mark.parametrize("damage", ["too_short", "too_long", "not_numeric", "bad_header", "truncated", "corrupt"])
def test_damaged_files(shared_data, tmp_path, damage):
    """Damage in the middle of a one-record-per-member file: the parser's resync, a truncated or
    corrupt member; every range of the split still reads what the whole file reads there."""
    recs = members((shared_data / "warc/cc-main-2020-34-sample.warc.gz").read_bytes())
    i = [k for k, r in enumerate(recs) if b"\r\nWARC-Type: response\r\n" in r[:600]][5]
    n = int(re.search(rb"\r\nContent-Length: (\d+)\r\n", recs[i]).group(1))
    value = {"too_short": b"%d" % (n - 150), "too_long": b"%d" % (n + len(recs[i + 1]) // 2),
             "not_numeric": b"12a4"}.get(damage)
    if value is not None:
        recs[i] = re.sub(rb"\r\nContent-Length: \d+\r\n", b"\r\nContent-Length: " + value + b"\r\n", recs[i], count=1)
    if damage == "bad_header":
        recs[i] = recs[i].replace(b"\r\nWARC-Type:", b"\r\nno colon here\r\nWARC-Type:", 1)
    data = b"".join(gzip.compress(r, mtime=0) for r in recs)
    if damage in ("truncated", "corrupt"):
        off = len(b"".join(gzip.compress(r, mtime=0) for r in recs[:i]))
        if damage == "truncated":
            data = data[: off + 300]
        else:
            data = bytearray(data)
            for k in range(off + 40, off + 240):
                data[k] ^= 0x5A
            data = bytes(data)
    p = tmp_path / "damaged.warc.gz"
    p.write_bytes(data)
    assert assert_split_reads_the_same(str(p)) > 10


def test_wet_file_splits_at_members(tmp_path, shared_data):
    from benchmarks.corpora.wet_corpus import write_wet
    from support import lingua_lines
    lines = lingua_lines(shared_data, "en")[:900]
    path = write_wet(tmp_path / "docs.warc.wet.gz", ["\n".join(lines[i:i + 3]) for i in range(0, 900, 3)])
    assert open_reader(path).name == "wet"
    assert assert_split_reads_the_same(path, targets=(1, 30_000)) > 50


def test_not_split_plain_single_member_or_repeated_ids(shared_data, tmp_path):
    src = shared_data / "warc/cc-main-2020-34-sample.warc.gz"
    recs = members(src.read_bytes())
    plain = tmp_path / "plain.warc"
    plain.write_bytes(b"".join(recs))
    whole = tmp_path / "one-member.warc.gz"
    whole.write_bytes(gzip.compress(b"".join(recs), mtime=0))
    responses = [k for k, r in enumerate(recs) if b"\r\nWARC-Type: response\r\n" in r[:600]]
    rid = re.search(rb"WARC-Record-ID: (<[^>]+>)", recs[responses[-1]]).group(1)  # a document's id again
    recs[responses[1]] = re.sub(rb"WARC-Record-ID: <[^>]+>", b"WARC-Record-ID: " + rid, recs[responses[1]], count=1)
    repeated = tmp_path / "repeated.warc.gz"
    repeated.write_bytes(b"".join(gzip.compress(r, mtime=0) for r in recs))
    for p in (plain, whole, repeated):
        assert open_reader(str(p)).split(str(p), 1) is None
    assert open_reader(str(src)).split(str(src), 1)

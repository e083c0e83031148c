"""The WARC/ARC reader on real shards: counts, records, binary routing, truncation, damage."""
from __future__ import annotations

import gzip
import re
import zlib

import brotli
import fsspec
import pytest

from engine.documents import BASE_COLUMNS, DROP_REASON
from operators.readers import WarcReader
from operators.readers.base import stable_id
from operators.readers.stream import ByteStream
from jobs.runjob import run_job
from operators.readers.warc import iter_records
from operators.writers import read_documents, read_rejects
from support import documents, drop_reasons, drop_sevens_job, read_shard


def test_cc_main_2020_sample(shared_data):
    reader, rows, batches = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz", batch_size=5)
    assert reader.stats["records"] == {"warcinfo": 1, "request": 17, "response": 16, "metadata": 16}
    assert reader.stats["skipped"] == {"warcinfo": 1, "request": 17, "metadata": 16}
    assert reader.errors == []
    assert len(rows) == 16 and len(documents(rows)) == 16
    assert [b.num_rows for b in batches] == [5, 5, 5, 1]
    # every batch has the same schema: base columns, then the raw html and the drop reason
    assert all(b.schema == batches[0].schema for b in batches)
    assert tuple(batches[0].schema.names[:7]) == BASE_COLUMNS + ("html", DROP_REASON)
    for r in rows:
        assert r["html"] and r["text"] is None
        assert re.fullmatch(r"[0-9a-f-]{36}", r["id"])
        assert r["url"].startswith("http")
        assert r["date"].startswith("2020-08")
        assert re.fullmatch(r"cc-main-2020-34-sample\.warc\.gz:\d+", r["source"])
    assert len({r["source"] for r in rows}) == 16


def test_source_offset_points_at_the_record(shared_data, tmp_path):
    """Seeking to a row's offset and reading one gzip member gives back that record."""
    path = shared_data / "warc/cc-main-2020-34-sample.warc.gz"
    _, rows, _ = read_shard(path)
    data = path.read_bytes()
    for r in rows[:4]:
        off = int(r["source"].rsplit(":", 1)[1])
        member = zlib.decompressobj(31).decompress(data[off:])
        assert member.startswith(b"WARC/1.0")
        assert f"<urn:uuid:{r['id']}>".encode() in member[:2000]


def test_archive_org_2008_text_dns_and_images(shared_data):
    reader, rows, _ = read_shard(shared_data / "warc/archive-org-2008.warc.gz", batch_size=100)
    assert reader.stats["records"] == {"warcinfo": 1, "response": 299, "request": 261, "metadata": 261}
    assert reader.stats["skipped"]["dns"] == 38
    assert reader.errors == []
    # every response that is not DNS is a row: a document or a reject with its reason
    assert len(rows) == 299 - 38
    d = documents(rows)
    html = [r for r in d if r["html"] is not None]
    text = [r for r in d if r["text"] is not None]
    assert len(html) == 94 and len(text) == 35
    assert all(r["html"] is None for r in text)
    why = drop_reasons(rows)
    assert why["binary_payload"] == 63  # images and other binaries
    assert why["http_status"] == 47  # redirects, 404s
    assert set(why) <= {"binary_payload", "http_status", "unsupported_type", "empty"}
    for r in rows:
        if r[DROP_REASON]:
            assert r["html"] is None and r["text"] is None and r["url"]


@pytest.mark.parametrize("name,n", [("web-2024-sample-0000.warc.gz", 22), ("web-2024-sample-0001.warc.gz", 15)])
def test_web_2024_samples(shared_data, name, n):
    reader, rows, _ = read_shard(shared_data / "warc" / name)
    assert len(documents(rows)) == n == len(rows)
    assert reader.stats["records"]["response"] == n
    # wget's log and manifest are resource records with metadata:// URIs: not documents
    assert reader.stats["skipped"]["resource_nonweb"] == 2
    assert all(r["url"].startswith("https://") for r in rows)


def test_binary_payloads_are_routed_with_reasons(shared_data):
    reader, rows, _ = read_shard(shared_data / "warc/edge/pdf-captures.warc.gz")
    assert reader.errors == []
    assert reader.stats["records"]["response"] == 35
    assert reader.stats["skipped"]["revisit"] == 2
    why = drop_reasons(rows)
    assert why["binary_payload"] >= 5
    assert sum(why.values()) + len(documents(rows)) == 35
    pdfs = [r for r in rows if "/bitstream/" in r["url"]]
    assert len(pdfs) == 2 and all(r[DROP_REASON] == "binary_payload" for r in pdfs)
    assert all(r["html"] is None and r["text"] is None for r in pdfs)
    assert why["unsupported_type"] >= 15  # css and javascript: text, but not documents
    assert len(documents(rows)) == 1

    reader, rows, _ = read_shard(shared_data / "warc/edge/office-docs-captures.warc.gz")
    assert len(rows) == 9 and documents(rows) == []
    why = drop_reasons(rows)
    assert why["binary_payload"] == 7  # docx, pptx, odp, rtf ...
    assert why["unsupported_type"] == 2  # csv, tsv: data, not prose


def test_plain_text_capture_goes_to_text(shared_data):
    _, rows, _ = read_shard(shared_data / "warc/edge/plain-text-capture.warc.gz")
    text = {r["url"].rsplit("/", 1)[1]: r for r in documents(rows)}
    assert set(text) == {"aut-text", "aut-text.txt"} and len(rows) == 2
    assert text["aut-text"]["text"] == "HRMMMMMMMMMMMMMM"  # no Content-Type: sniffed as text
    long = text["aut-text.txt"]  # text/plain, Content-Encoding: gzip
    assert long["html"] is None and len(long["text"]) > 300
    assert "\x1f" not in long["text"] and long["text"].count("\ufffd") == 0


def test_max_bytes_marks_too_large(shared_data):
    _, rows, _ = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz", max_bytes=20_000)
    why = drop_reasons(rows)
    assert why["too_large"] >= 3
    assert len(rows) == 16
    for r in rows:
        if r[DROP_REASON] == "too_large":
            assert r["html"] is None and r["id"] and r["url"]
        else:
            assert len(r["html"].encode()) <= 20_000 * 4


def test_arc_files(shared_data):
    for name in ("warcio-example.arc", "warcio-example.arc.gz"):
        reader, rows, _ = read_shard(shared_data / "warc/edge" / name)
        assert reader.stats["records"] == {"warcinfo": 1, "response": 1}
        assert reader.errors == []
        (r,) = rows
        assert r["url"] == "http://example.com/" and "Example Domain" in r["html"]
        assert r["date"] == "2014-02-16T05:02:21Z"
        assert re.fullmatch(r"[0-9a-f]{40}", r["id"])  # ARC has no record id: sha1(shard, offset)


def test_arc_v2_with_space_in_url(tmp_path):
    body = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>v2 page</body></html>"
    desc = (b"2 0 Test\nURL IP-address Archive-date Content-type Result-code Checksum Location Offset "
            b"Filename Archive-length\n")
    head = b"filedesc://x.arc 0.0.0.0 20080101000000 text/plain 200 - - 0 x.arc %d\n" % len(desc)
    rec = b"http://a.org/p q 1.2.3.4 20080102030405 text/html 200 ABC - 0 x.arc %d\n" % len(body)
    p = tmp_path / "v2.arc"
    p.write_bytes(head + desc + b"\n" + rec + body + b"\n")
    reader, rows, _ = read_shard(p)
    (r,) = rows
    assert (r["url"], r["date"], r["html"]) == ("http://a.org/p%20q", "2008-01-02T03:04:05Z",
                                                "<html><body>v2 page</body></html>")
    assert reader.errors == []


def test_chunked_transfer_and_resource_record(shared_data):
    _, rows, _ = read_shard(shared_data / "warc/edge/warcio-example-iana.org-chunked.warc")
    (r,) = rows
    assert r["html"].lstrip().lower().startswith("<!doctype html>")
    assert "</html>" in r["html"]
    _, rows, _ = read_shard(shared_data / "warc/edge/warcio-example-resource.warc.gz")
    assert len(documents(rows)) == 1 and rows[0]["html"]


def test_space_in_target_uri_is_cleaned(shared_data):
    _, rows, _ = read_shard(shared_data / "warc/edge/warcio-example-space-in-target-uri.warc.gz")
    (r,) = rows
    assert " " not in r["url"] and "%20" in r["url"]
    assert r[DROP_REASON] == "binary_payload"  # a PNG resource


def test_clipped_rows_are_rejected_as_truncated(shared_data):
    reader, rows, _ = read_shard(shared_data / "warc/edge/clipped.warc.gz")
    assert [r[DROP_REASON] for r in rows] == ["truncated"]
    assert len(reader.errors) == 1


def test_truncated_copy_keeps_records_before_the_cut(shared_data, tmp_path):
    src = (shared_data / "warc/cc-main-2020-34-sample.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(src[: len(src) // 2])
    reader, rows, _ = read_shard(cut)
    good = documents(rows)
    assert 4 <= len(good) < 16
    assert len(reader.errors) == 1 and reader.errors[0].startswith("truncated gzip member at offset")
    full = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz")[1]
    assert [r["id"] for r in good] == [r["id"] for r in full[: len(good)]]
    assert [r["html"] for r in good] == [r["html"] for r in full[: len(good)]]


def test_corrupt_gzip_member(shared_data, tmp_path):
    src = bytearray((shared_data / "warc/cc-main-2020-34-sample.warc.gz").read_bytes())
    _, full, _ = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz")
    off = int(full[8]["source"].rsplit(":", 1)[1])
    for i in range(off + 40, off + 240):
        src[i] ^= 0x5A
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(bytes(src))
    reader, rows, _ = read_shard(bad)
    assert len(reader.errors) == 1
    assert f"corrupt gzip member at offset {off}" in reader.errors[0] or "truncated" in reader.errors[0]
    assert [r["id"] for r in documents(rows)][:8] == [r["id"] for r in full[:8]]


def test_garbage_file_reports_error(tmp_path):
    p = tmp_path / "noise.warc"
    p.write_bytes(b"this is not a warc file\n" * 10)
    reader, rows, _ = read_shard(p, "warc")
    assert rows == [] and len(reader.errors) == 1 and "no WARC record at offset 0" in reader.errors[0]
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    reader, rows, _ = read_shard(empty, "warc")
    assert rows == [] and reader.errors == []


def test_bad_content_length_and_bogus_charset(tmp_path):
    html = '<html><head><meta charset="x-bogus-9"></head><body>Grüße aus Köln</body></html>'.encode("cp1252")
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=no-such-charset\r\n\r\n" + html
    rec = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: <http://example.org/a b>\r\n"
           b"WARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n"
           b"Content-Length: %d\r\n\r\n" % len(http) + http + b"\r\n\r\n")
    broken = b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: lots\r\n\r\nxyz\r\n\r\n"
    p = tmp_path / "x.warc"
    untyped = b"WARC/1.0\r\nWARC-Target-URI: http://e.org/\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n"
    p.write_bytes(rec + untyped + broken + rec)
    reader, rows, _ = read_shard(p)
    # the bad length costs only its record: parsing resumes at the next `WARC/1.0` line
    assert reader.stats["records"] == {"response": 2, "untyped": 1, "damaged": 1}
    assert reader.stats["skipped"] == {"untyped": 1}
    assert reader.errors == []
    assert [r[DROP_REASON] for r in rows] == [None, "bad_content_length", None]
    at = len(rec + untyped)
    assert rows[1]["source"] == f"x.warc:{at}" and rows[1]["id"] == stable_id("x.warc", at)
    assert rows[1]["html"] is None and rows[1]["text"] is None
    r = rows[0]
    assert r["url"] == "http://example.org/a%20b"
    assert "Grüße aus Köln" in r["html"]
    assert re.fullmatch(r"[0-9a-f]{40}", r["id"])  # no WARC-Record-ID: sha1 of shard and offset
    assert r["source"] == "x.warc:0"
    assert rows[2]["html"] == r["html"] and rows[2]["source"] == f"x.warc:{at + len(broken)}"


def test_content_encoding_gzip_and_binary_sniffing(tmp_path):
    page = "<!DOCTYPE html><html><body><p>Привет, мир</p></body></html>".encode("utf-8")
    out = []
    for body, headers in (
        (gzip.compress(page), b"Content-Type: text/html\r\nContent-Encoding: gzip\r\n"),
        (zlib.compress(page), b"Content-Type: text/html\r\nContent-Encoding: deflate\r\n"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3 binary", b"Content-Type: text/html\r\n"),  # lies about its type
        (b"\x00\x01\x02garbage\x00", b"Content-Type: text/plain\r\n"),
        (page, b"Content-Type: application/pdf\r\n"),
        (page, b"Content-Type: text/html\r\nContent-Encoding: gzip\r\n"),  # stored decoded, header kept
        (bytes(range(256)) * 4, b"Content-Type: text/html\r\nContent-Encoding: x-unknown-coding\r\n"),
        (brotli.compress(page), b"Content-Type: text/html\r\nContent-Encoding: br\r\n"),
    ):
        http = b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n" + body
        out.append(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:%d>\r\n"
                   b"WARC-Target-URI: http://e.org/\r\nContent-Type: application/http; msgtype=response\r\n"
                   b"Content-Length: %d\r\n\r\n" % (len(out), len(http)) + http + b"\r\n\r\n")
    p = tmp_path / "enc.warc.gz"
    p.write_bytes(b"".join(gzip.compress(r) for r in out))
    reader, rows, _ = read_shard(p)
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert "Привет, мир" in rows[0]["html"] and "Привет, мир" in rows[1]["html"]
    assert "Привет, мир" in rows[5]["html"] and "Привет, мир" in rows[7]["html"]
    assert [r[DROP_REASON] for r in rows] == [None, None, "binary_payload", "binary_payload", "binary_payload",
                                              None, "undecodable", None]
    assert reader.errors == []


def test_batches_also_bounded_by_bytes(shared_data):
    reader = WarcReader(max_batch_bytes=50_000)
    sizes = [b.num_rows for b in reader.read(str(shared_data / "warc/cc-main-2020-34-sample.warc.gz"), 1000)]
    assert sum(sizes) == 16 and len(sizes) > 3


# ------------------------------------------------------------------ damaged framing: resynchronise

SAMPLE = "warc/cc-main-2020-34-sample.warc.gz"
#: How a real file can be laid out: one gzip member per record (the usual), uncompressed, one member.
LAYOUTS = ("per_record_gzip", "plain", "one_gzip_member")


def sample_records(shared_data, rel: str = SAMPLE) -> list[bytes]:
    """The decoded records of a real file written one record per gzip member."""
    data, out, pos = (shared_data / rel).read_bytes(), [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[pos:]))
        pos = len(data) - len(d.unused_data)
    return out


def write_layout(path, records: list[bytes], layout: str) -> list[str]:
    """Write the records in a layout; returns each record's offset as the reader names it."""
    if layout == "per_record_gzip":
        members = [gzip.compress(r, mtime=0) for r in records]
        path.write_bytes(b"".join(members))
        return [str(sum(len(m) for m in members[:i])) for i in range(len(records))]
    starts = [sum(len(r) for r in records[:i]) for i in range(len(records))]
    if layout == "plain":
        path.write_bytes(b"".join(records))
        return [str(o) for o in starts]
    path.write_bytes(gzip.compress(b"".join(records), mtime=0))
    return [f"0+{o}" if o else "0" for o in starts]


def content_length(rec: bytes) -> int:
    return int(re.search(rb"\r\nContent-Length: (\d+)\r\n", rec).group(1))


def with_length(rec: bytes, value: bytes) -> bytes:
    return re.sub(rb"\r\nContent-Length: \d+\r\n", b"\r\nContent-Length: " + value + b"\r\n", rec, count=1)


def comparable(rows: list[dict]) -> list[tuple]:
    return [(r["id"], r["url"], r["html"], r["text"], r[DROP_REASON]) for r in rows]


def response_index(records: list[bytes], n: int) -> int:
    """The index of the n-th response record (a document, with records before and after it)."""
    return [i for i, r in enumerate(records) if b"\r\nWARC-Type: response\r\n" in r[:600]][n]


LENGTH_DAMAGE = {
    "not_numeric": lambda n, nxt: b"12a4",
    "negative": lambda n, nxt: b"-%d" % n,
    "too_short": lambda n, nxt: b"%d" % (n - 150),
    "too_long": lambda n, nxt: b"%d" % (n + len(nxt) // 2),  # ends inside the next record
    "past_the_end": lambda n, nxt: b"%d" % 10**12,
}


@pytest.mark.parametrize("max_bytes", [10_000_000, 2_000], ids=["looked_ahead", "streamed"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("damage", sorted(LENGTH_DAMAGE))
def test_bad_content_length_costs_only_its_record(shared_data, tmp_path, damage, layout, max_bytes):
    """A wrong Content-Length used to end the shard; now the damaged record is a reject row named by
    its offset and every record after it reads as in the intact file (blocks above max_bytes are
    skipped as a stream, not looked at, so both paths are tried)."""
    records = sample_records(shared_data)
    k = response_index(records, 5)
    name = "sample" + (".warc" if layout == "plain" else ".warc.gz")
    intact = tmp_path / "intact" / name
    intact.parent.mkdir()
    write_layout(intact, records, layout)
    _, want, _ = read_shard(intact, max_bytes=max_bytes)
    damaged = list(records)
    damaged[k] = with_length(records[k], LENGTH_DAMAGE[damage](content_length(records[k]), records[k + 1]))
    path = tmp_path / name
    offsets = write_layout(path, damaged, layout)
    reader, rows, _ = read_shard(path, max_bytes=max_bytes)
    assert reader.errors == []
    bad_id = re.search(rb"WARC-Record-ID: <urn:uuid:([^>]+)>", records[k]).group(1).decode()
    (bad,) = [r for r in rows if r[DROP_REASON] == "bad_content_length"]
    assert (bad["id"], bad["source"]) == (bad_id, f"{name}:{offsets[k]}")
    assert bad["html"] is None and bad["url"].startswith("http")
    assert comparable([r for r in rows if r is not bad]) == comparable([r for r in want if r["id"] != bad_id])
    assert reader.stats["records"]["damaged"] == 1
    assert len(want) == 16 and len(rows) == 16


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unparseable_headers_cost_only_their_records(shared_data, tmp_path, layout):
    """A header line that is no `Name: value` field, a damaged `WARC/1.0` line, and a length too
    long right before a damaged version line: each damaged record is one `bad_record_header` or
    `bad_content_length` row with its offset, and every other record reads as in the intact file."""
    records = sample_records(shared_data)
    name = "sample" + (".warc" if layout == "plain" else ".warc.gz")
    intact = tmp_path / "intact" / name
    intact.parent.mkdir()
    write_layout(intact, records, layout)
    _, want, _ = read_shard(intact)
    a, b, c = response_index(records, 2), response_index(records, 6), response_index(records, 10)
    damaged = list(records)
    damaged[a] = records[a].replace(b"\r\nWARC-Type: response\r\n", b"\r\nWARC-Type: response\r\nno field here\r\n", 1)
    damaged[b] = b"WARX" + records[b][4:]
    damaged[c] = with_length(records[c], b"%d" % (content_length(records[c]) + 300))
    damaged[c + 1] = b"W\x00RC" + records[c + 1][4:]
    path = tmp_path / name
    offsets = write_layout(path, damaged, layout)
    reader, rows, _ = read_shard(path)
    assert reader.errors == []
    hurt = [(r["source"], r[DROP_REASON]) for r in rows if r[DROP_REASON] in ("bad_record_header", "bad_content_length")]
    assert hurt == [(f"{name}:{offsets[a]}", "bad_record_header"), (f"{name}:{offsets[b]}", "bad_record_header"),
                    (f"{name}:{offsets[c]}", "bad_content_length"), (f"{name}:{offsets[c + 1]}", "bad_record_header")]
    for r in rows:
        if r[DROP_REASON] == "bad_record_header":  # its header is not trusted: the id comes from the offset
            assert r["id"] == stable_id(name, r["source"].rsplit(":", 1)[1])
    lost = {re.search(rb"WARC-Record-ID: <urn:uuid:([^>]+)>", records[i]).group(1).decode() for i in (a, b, c)}
    assert comparable([r for r in rows if (r["source"], r[DROP_REASON]) not in hurt]) == \
        comparable([r for r in want if r["id"] not in lost])


def test_resync_keeps_memory_bounded_and_seeks_back(shared_data):
    """An 11 MB uncompressed WARC whose early record declares 1 GB: the parser skips as a stream,
    finds the file ends first, goes back to the header's end and scans on; a later too-short length
    is rescanned in the buffer. Neither holds more than a few MB, and every other record is read."""
    records = sample_records(shared_data) * 20
    k1, k2 = response_index(records, 3), response_index(records, 200)
    records[k1] = with_length(records[k1], b"1000000000")
    records[k2] = with_length(records[k2], b"%d" % (content_length(records[k2]) - 500))
    fs = fsspec.filesystem("memory")
    with fs.open("/big.warc", "wb") as f:
        f.write(b"".join(records))
    try:
        with fs.open("/big.warc", "rb") as f:
            s = ByteStream(f)
            peak, seen, hurt = 0, 0, []
            for rec in iter_records(s, lambda h: True, 1_000_000):
                seen += 1
                peak = max(peak, len(s.buf))
                if rec.damage:
                    hurt.append((rec.offset, rec.damage))
        assert seen == len(records)
        starts = [sum(len(r) for r in records[:i]) for i in range(len(records))]
        assert hurt == [(str(starts[k1]), "bad_content_length"), (str(starts[k2]), "bad_content_length")]
        assert peak < 4 << 20
    finally:
        fs.rm("/big.warc")


def test_bad_arc_header_is_a_reject_row(shared_data):
    reader, rows, _ = read_shard(shared_data / "warc/edge/warcio-bad.arc")
    assert [(r["source"], r[DROP_REASON]) for r in rows] == [("warcio-bad.arc:0", "bad_record_header")]
    assert len(reader.errors) == 1 and "bad ARC record header at offset 0" in reader.errors[0]


def test_damaged_records_are_accounted_for_in_a_run(shared_data, tmp_path):
    """Through a job: each damaged record counts in documents_read and lands in
    rejects/operator=reader with its reason and offset; the intact ones are kept as when the file
    is whole, and the counts add up."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    expected_rejects, expected_kept, n_rows = [], [], 0
    for source, layout in ((SAMPLE, "per_record_gzip"), ("warc/web-2024-sample-0000.warc.gz", "plain")):
        records = sample_records(shared_data, source)
        a, b = response_index(records, 1), response_index(records, 9)
        damaged = list(records)
        damaged[a] = with_length(records[a], b"%d" % (content_length(records[a]) + 4000))
        damaged[b] = b"WARC/1.0\r\n\x00\x01\x02 not a header\r\n" + records[b][10:]
        name = f"{layout}.warc" + (".gz" if layout != "plain" else "")
        offsets = write_layout(inputs / name, damaged, layout)
        expected_rejects += [(f"{name}:{offsets[a]}", "bad_content_length"), (f"{name}:{offsets[b]}", "bad_record_header")]
        intact = read_shard(shared_data / source)[1]
        n_rows += len(intact)
        expected_kept += [r["id"] for i, r in enumerate(documents(intact)) if i not in (1, 9)]
    out = tmp_path / "out"
    stats = run_job(drop_sevens_job(), inputs=[str(inputs)], out=str(out))
    t = stats["total"]
    assert t["accounting_ok"] and t["shard_errors"] == 0
    assert t["documents_read"] == n_rows == t["documents_kept"] + t["documents_dropped"]
    assert stats["operators"]["reader"]["dropped"] == {"bad_content_length": 2, "bad_record_header": 2}
    rej = read_rejects(str(out)).to_pylist()
    assert sorted((r["source"], r["reason"]) for r in rej if r["operator"] == "reader") == sorted(expected_rejects)
    kept = read_documents(str(out)).column("id").to_pylist()
    assert sorted(kept) == sorted(i for i in expected_kept if not i.endswith("7"))

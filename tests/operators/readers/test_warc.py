"""The WARC/ARC reader on real shards: counts, records, binary routing, truncation, damage."""
from __future__ import annotations

import gzip
import re
import zlib

import brotli
import pytest

from engine.documents import BASE_COLUMNS, DROP_REASON
from operators.readers import WarcReader
from support import documents, drop_reasons, read_shard


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


def test_missing_content_length_and_bogus_charset(tmp_path):
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
    assert reader.stats["records"] == {"response": 1, "untyped": 1}  # parsing stops at the bad length
    assert reader.stats["skipped"] == {"untyped": 1}
    assert len(rows) == 1
    r = rows[0]
    assert r["url"] == "http://example.org/a%20b"
    assert "Grüße aus Köln" in r["html"]
    assert re.fullmatch(r"[0-9a-f]{40}", r["id"])  # no WARC-Record-ID: sha1 of shard and offset
    assert r["source"] == "x.warc:0"
    assert len(reader.errors) == 1 and "Content-Length" in reader.errors[0]


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

"""Readers on the real shared shards: counts, charsets, binary routing, truncation, formats, paths."""
from __future__ import annotations

import collections
import gzip
import json
import re
import shutil
import zlib

import brotli
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.documents import BASE_COLUMNS, DROP_REASON
from engine.operator import READERS
from operators.readers import JsonlReader, ParquetReader, WarcReader, WetReader, detect_format, open_reader
from operators.readers import charset
from operators.readers.stream import ByteStream
from operators.readers.warc import iter_records


def read_all(path, fmt="auto", batch_size=64, **params):
    """(reader, rows as dicts, batches) for one shard."""
    reader = open_reader(str(path), fmt, **params)
    batches = list(reader.read(str(path), batch_size))
    rows = [r for b in batches for r in b.to_pylist()]
    return reader, rows, batches


def docs(rows):
    return [r for r in rows if r[DROP_REASON] is None]


def reasons(rows):
    return collections.Counter(r[DROP_REASON] for r in rows if r[DROP_REASON] is not None)


# ---------------------------------------------------------------- registry and API

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


# ---------------------------------------------------------------- WARC

def test_cc_main_2020_sample(shared_data):
    reader, rows, batches = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz", batch_size=5)
    assert reader.stats["records"] == {"warcinfo": 1, "request": 17, "response": 16, "metadata": 16}
    assert reader.stats["skipped"] == {"warcinfo": 1, "request": 17, "metadata": 16}
    assert reader.errors == []
    assert len(rows) == 16 and len(docs(rows)) == 16
    assert [b.num_rows for b in batches] == [5, 5, 5, 1]
    # every batch has the same schema: base columns then the drop reason
    assert all(b.schema == batches[0].schema for b in batches)
    assert tuple(batches[0].schema.names[:7]) == BASE_COLUMNS + (DROP_REASON,)
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
    _, rows, _ = read_all(path)
    data = path.read_bytes()
    for r in rows[:4]:
        off = int(r["source"].rsplit(":", 1)[1])
        member = zlib.decompressobj(31).decompress(data[off:])
        assert member.startswith(b"WARC/1.0")
        assert f"<urn:uuid:{r['id']}>".encode() in member[:2000]


def test_charsets_gb2312_cp1251_are_readable(shared_data):
    _, rows, _ = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz")
    cjk_pages = [r for r in rows if len(re.findall(r"[\u4e00-\u9fff]", r["html"])) > 100]
    cyr_pages = [r for r in rows if len(re.findall(r"[\u0400-\u04ff]", r["html"])) > 1000]
    assert len(cjk_pages) >= 10
    assert [r["url"] for r in cyr_pages] == ["http://01spb.ru/company/"]
    for r in rows:
        assert r["html"].count("\ufffd") <= 2, r["url"]
        assert not re.search("[ÃÐÑ][\x80-\xbf]", r["html"]), r["url"]  # no UTF-8 read as latin-1
    ru = cyr_pages[0]["html"]
    assert re.search(r"[А-Яа-я]{4,} [А-Яа-я]{4,}", ru)  # real Russian words


def test_clueweb_euc_jp(shared_data):
    reader, rows, _ = read_all(shared_data / "warc/clueweb09-ja-eucjp.warc.gz")
    assert reader.stats["records"] == {"warcinfo": 1, "response": 29}
    assert len(docs(rows)) == 29 and reader.errors == []
    for r in rows:
        h = r["html"]
        assert len(re.findall(r"[\u3040-\u30ff]", h)) > 100  # hiragana/katakana
        assert h.count("\ufffd") == 0
    assert all("ヘッドポーター" in r["html"] for r in rows)  # the shop name, readable


def test_archive_org_2008_text_dns_and_images(shared_data):
    reader, rows, _ = read_all(shared_data / "warc/archive-org-2008.warc.gz", batch_size=100)
    assert reader.stats["records"] == {"warcinfo": 1, "response": 299, "request": 261, "metadata": 261}
    assert reader.stats["skipped"]["dns"] == 38
    assert reader.errors == []
    # every response that is not DNS is a row: a document or a reject with its reason
    assert len(rows) == 299 - 38
    d = docs(rows)
    html = [r for r in d if r["html"] is not None]
    text = [r for r in d if r["text"] is not None]
    assert len(html) == 94 and len(text) == 35
    assert all(r["html"] is None for r in text)
    why = reasons(rows)
    assert why["binary_payload"] == 63  # images and other binaries
    assert why["http_status"] == 47  # redirects, 404s
    assert set(why) <= {"binary_payload", "http_status", "unsupported_type", "empty"}
    for r in rows:
        if r[DROP_REASON]:
            assert r["html"] is None and r["text"] is None and r["url"]


@pytest.mark.parametrize("name,n", [("web-2024-sample-0000.warc.gz", 22), ("web-2024-sample-0001.warc.gz", 15)])
def test_web_2024_samples(shared_data, name, n):
    reader, rows, _ = read_all(shared_data / "warc" / name)
    assert len(docs(rows)) == n == len(rows)
    assert reader.stats["records"]["response"] == n
    # wget's log and manifest are resource records with metadata:// URIs: not documents
    assert reader.stats["skipped"]["resource_nonweb"] == 2
    assert all(r["url"].startswith("https://") for r in rows)


def test_binary_payloads_are_routed_with_reasons(shared_data):
    reader, rows, _ = read_all(shared_data / "warc/edge/pdf-captures.warc.gz")
    assert reader.errors == []
    assert reader.stats["records"]["response"] == 35
    assert reader.stats["skipped"]["revisit"] == 2
    why = reasons(rows)
    assert why["binary_payload"] >= 5
    assert sum(why.values()) + len(docs(rows)) == 35
    pdfs = [r for r in rows if "/bitstream/" in r["url"]]
    assert len(pdfs) == 2 and all(r[DROP_REASON] == "binary_payload" for r in pdfs)
    assert all(r["html"] is None and r["text"] is None for r in pdfs)
    assert why["unsupported_type"] >= 15  # css and javascript: text, but not documents
    assert len(docs(rows)) == 1

    reader, rows, _ = read_all(shared_data / "warc/edge/office-docs-captures.warc.gz")
    assert len(rows) == 9 and docs(rows) == []
    why = reasons(rows)
    assert why["binary_payload"] == 7  # docx, pptx, odp, rtf ...
    assert why["unsupported_type"] == 2  # csv, tsv: data, not prose


def test_plain_text_capture_goes_to_text(shared_data):
    _, rows, _ = read_all(shared_data / "warc/edge/plain-text-capture.warc.gz")
    text = {r["url"].rsplit("/", 1)[1]: r for r in docs(rows)}
    assert set(text) == {"aut-text", "aut-text.txt"} and len(rows) == 2
    assert text["aut-text"]["text"] == "HRMMMMMMMMMMMMMM"  # no Content-Type: sniffed as text
    long = text["aut-text.txt"]  # text/plain, Content-Encoding: gzip
    assert long["html"] is None and len(long["text"]) > 300
    assert "\x1f" not in long["text"] and long["text"].count("\ufffd") == 0


def test_max_bytes_marks_too_large(shared_data):
    _, rows, _ = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz", max_bytes=20_000)
    why = reasons(rows)
    assert why["too_large"] >= 3
    assert len(rows) == 16
    for r in rows:
        if r[DROP_REASON] == "too_large":
            assert r["html"] is None and r["id"] and r["url"]
        else:
            assert len(r["html"].encode()) <= 20_000 * 4


def test_ids_are_stable_across_runs(shared_data):
    for name in ("warc/archive-org-2008.warc.gz", "warc/edge/warcio-example.arc", "wet/ccnet-sample.wet.txt"):
        a = [r["id"] for r in read_all(shared_data / name, batch_size=7)[1]]
        b = [r["id"] for r in read_all(shared_data / name, batch_size=1000)[1]]
        assert a == b and len(set(a)) == len(a) and a


def test_arc_files(shared_data):
    for name in ("warcio-example.arc", "warcio-example.arc.gz"):
        reader, rows, _ = read_all(shared_data / "warc/edge" / name)
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
    reader, rows, _ = read_all(p)
    (r,) = rows
    assert (r["url"], r["date"], r["html"]) == ("http://a.org/p%20q", "2008-01-02T03:04:05Z",
                                                "<html><body>v2 page</body></html>")
    assert reader.errors == []


def test_chunked_transfer_and_resource_record(shared_data):
    _, rows, _ = read_all(shared_data / "warc/edge/warcio-example-iana.org-chunked.warc")
    (r,) = rows
    assert r["html"].lstrip().lower().startswith("<!doctype html>")
    assert "</html>" in r["html"]
    _, rows, _ = read_all(shared_data / "warc/edge/warcio-example-resource.warc.gz")
    assert len(docs(rows)) == 1 and rows[0]["html"]


def test_space_in_target_uri_is_cleaned(shared_data):
    _, rows, _ = read_all(shared_data / "warc/edge/warcio-example-space-in-target-uri.warc.gz")
    (r,) = rows
    assert " " not in r["url"] and "%20" in r["url"]
    assert r[DROP_REASON] == "binary_payload"  # a PNG resource


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


def test_clipped_rows_are_rejected_as_truncated(shared_data):
    reader, rows, _ = read_all(shared_data / "warc/edge/clipped.warc.gz")
    assert [r[DROP_REASON] for r in rows] == ["truncated"]
    assert len(reader.errors) == 1


def test_truncated_copy_keeps_records_before_the_cut(shared_data, tmp_path):
    src = (shared_data / "warc/cc-main-2020-34-sample.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(src[: len(src) // 2])
    reader, rows, _ = read_all(cut)
    good = docs(rows)
    assert 4 <= len(good) < 16
    assert len(reader.errors) == 1 and reader.errors[0].startswith("truncated gzip member at offset")
    full = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz")[1]
    assert [r["id"] for r in good] == [r["id"] for r in full[: len(good)]]
    assert [r["html"] for r in good] == [r["html"] for r in full[: len(good)]]


def test_corrupt_gzip_member(shared_data, tmp_path):
    src = bytearray((shared_data / "warc/cc-main-2020-34-sample.warc.gz").read_bytes())
    _, full, _ = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz")
    off = int(full[8]["source"].rsplit(":", 1)[1])
    for i in range(off + 40, off + 240):
        src[i] ^= 0x5A
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(bytes(src))
    reader, rows, _ = read_all(bad)
    assert len(reader.errors) == 1
    assert f"corrupt gzip member at offset {off}" in reader.errors[0] or "truncated" in reader.errors[0]
    assert [r["id"] for r in docs(rows)][:8] == [r["id"] for r in full[:8]]


def test_garbage_file_reports_error(tmp_path):
    p = tmp_path / "noise.warc"
    p.write_bytes(b"this is not a warc file\n" * 10)
    reader, rows, _ = read_all(p, "warc")
    assert rows == [] and len(reader.errors) == 1 and "no WARC record at offset 0" in reader.errors[0]
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    reader, rows, _ = read_all(empty, "warc")
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
    reader, rows, _ = read_all(p)
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
    reader, rows, _ = read_all(p)
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert "Привет, мир" in rows[0]["html"] and "Привет, мир" in rows[1]["html"]
    assert "Привет, мир" in rows[5]["html"] and "Привет, мир" in rows[7]["html"]
    assert [r[DROP_REASON] for r in rows] == [None, None, "binary_payload", "binary_payload", "binary_payload",
                                              None, "undecodable", None]
    assert reader.errors == []


def test_charset_module_unit():
    assert charset.normalize("GB2312") == "gb18030"
    assert charset.normalize("utf-7") is None
    assert charset.normalize("no-such") is None
    assert charset.normalize("ISO-8859-1") == "cp1252"
    text, enc = charset.decode("Ωμέγα".encode("utf-8"), "text/html; charset=iso-8859-1")
    assert text == "Ωμέγα" and enc == "utf-8"  # valid UTF-8 wins over a wrong declaration
    text, enc = charset.decode("Съешь же ещё этих мягких".encode("cp1251"), "text/html; charset=windows-1251")
    assert text == "Съешь же ещё этих мягких"
    meta = b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=euc-jp">'
    text, enc = charset.decode(meta + "日本語のページ".encode("euc-jp"), None)
    assert "日本語のページ" in text and enc == "euc_jp"
    text, enc = charset.decode(b"\xff\xfeh\x00i\x00", None)
    assert text == "hi"


def test_escape_codec_charset_is_refused_not_a_crash(tmp_path):
    # A page declaring charset=unicode_escape (not UTF-8, so the declaration is tried) decoded to a
    # lone surrogate from "\\ud800": the batch could not become Arrow and read() raised.
    def rec(rid, body, ctype):
        http = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\n\r\n" + body
        return (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:%s>\r\n"
                b"WARC-Target-URI: http://e.org/\r\nContent-Type: application/http; msgtype=response\r\n"
                b"Content-Length: %d\r\n\r\n" % (rid, len(http)) + http + b"\r\n\r\n")
    p = tmp_path / "esc.warc"
    p.write_bytes(rec(b"1", b"<html><body>caf\xe9 \\ud800 x</body></html>", b"text/html; charset=unicode_escape")
                  + rec(b"2", b"<html><body>next</body></html>", b"text/html"))
    reader, rows, _ = read_all(p)
    assert [r["id"] for r in rows] == ["1", "2"] and reader.errors == []
    assert "café \\ud800" in rows[0]["html"]
    for label in ("unicode_escape", "raw-unicode-escape", "punycode", "idna"):
        assert charset.normalize(label) is None


def test_jsonl_lone_surrogate_escape_does_not_end_the_shard(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"id": "a", "text": "before"}\n'
                  b'{"id": "b", "text": "cut emoji \\ud83d here", "title": "\\udc80"}\n'
                  b'{"id": "c", "text": "pair \\ud83d\\ude00 ok"}\n')
    reader, rows, _ = read_all(p)
    assert reader.errors == []
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[1]["text"] == "cut emoji \ufffd here" and rows[1]["title"] == "\ufffd"
    assert rows[2]["text"] == "pair \U0001f600 ok"


def test_jsonl_columns_do_not_depend_on_batch_size(tmp_path):
    # The extra columns' types came from the first *batch*: with batch_size=1 a float after an int
    # was lost and a later field dropped, with batch_size=100 both were kept.
    p = tmp_path / "k.jsonl"
    p.write_text('{"id":"a","text":"x","score":1}\n{"id":"b","text":"y","score":2.5}\n'
                 '{"id":"c","text":"z","score":3,"extra":true}\n' +
                 "".join(f'{{"id":"n{i}","text":"t","score":{i}}}\n' for i in range(40)))
    outs = []
    for bs in (1, 2, 7, 100):
        reader, rows, batches = read_all(p, batch_size=bs)
        assert all(b.num_rows <= bs for b in batches) and len(rows) == 43
        assert all(b.schema == batches[0].schema for b in batches)
        outs.append((rows, reader.stats))
    assert all(o == outs[0] for o in outs)
    rows = outs[0][0]
    assert [r["score"] for r in rows[:3]] == [1.0, 2.5, 3.0] and rows[2]["extra"] is True


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
        reader, rows, batches = read_all(tmp_path / name)
        assert reader.errors == []
        for b in batches:
            b.validate(full=True)
        assert [r["text"] for r in rows][1].startswith("bad\ufffd")
    assert rows[0]["text"] == "hello"


def test_memory_bounded_on_single_member_gzip():
    """A file gzipped as one member (not per record) streams: the buffer never holds the file."""
    body = b"<html><body>" + b"x" * 20_000 + b"</body></html>"
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    rec = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://e.org/\r\n"
           b"Content-Type: application/http\r\nContent-Length: %d\r\n\r\n" % len(http) + http + b"\r\n\r\n")
    raw = gzip.compress(rec * 1500)  # ~30 MB decoded, one member
    fs = fsspec.filesystem("memory")
    with fs.open("/one-member.warc.gz", "wb") as f:
        f.write(raw)
    with fs.open("/one-member.warc.gz", "rb") as f:
        s = ByteStream(f)
        peak = 0
        n = 0
        for rec_ in iter_records(s, lambda h: True, 10_000_000):
            n += 1
            peak = max(peak, len(s.buf))
        assert n == 1500
        assert peak < 4 << 20
    reader = WarcReader()
    sizes = [b.num_rows for b in reader.read("memory://one-member.warc.gz", 400)]
    assert sizes == [400, 400, 400, 300]
    fs.rm("/one-member.warc.gz")


def test_batches_also_bounded_by_bytes(shared_data):
    reader = WarcReader(max_batch_bytes=50_000)
    sizes = [b.num_rows for b in reader.read(str(shared_data / "warc/cc-main-2020-34-sample.warc.gz"), 1000)]
    assert sum(sizes) == 16 and len(sizes) > 3


# ---------------------------------------------------------------- WET

def test_wet_ccnet_sample(shared_data):
    reader, rows, _ = read_all(shared_data / "wet/ccnet-sample.wet.txt")
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
    _, wet_rows, _ = read_all(shared_data / "wet/cc-main-2024-22-whirlwind.warc.wet.gz")
    _, warc_rows, _ = read_all(shared_data / "warc/cc-main-2024-22-whirlwind.warc.gz")
    (w,) = wet_rows
    (h,) = warc_rows
    assert w["url"] == h["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert w["text"].startswith("Escopete - Biquipedia") and w["html"] is None
    assert "Escopete" in h["html"]
    assert w["id"] == "ba729a40-ff84-4085-8d48-0a5b2ee0c42d"


def test_wat_is_metadata_only(shared_data):
    path = shared_data / "wet/cc-main-2024-22-whirlwind.warc.wat.gz"
    for fmt in ("auto", "warc", "wet"):
        reader, rows, _ = read_all(path, fmt)
        assert rows == [] and reader.errors == []
        assert reader.stats["records"] == {"warcinfo": 1, "metadata": 1}


# ---------------------------------------------------------------- JSONL

def test_ccnet_reference_jsonl(shared_data):
    path = shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz"
    reader, rows, batches = read_all(path, batch_size=4)
    assert isinstance(reader, JsonlReader)
    assert len(rows) == 10 and reader.errors == [] and reader.stats["records"] == {"json": 10}
    first = json.loads(gzip.open(path).readline())
    assert rows[0]["id"] == first["id"] and rows[0]["text"] == first["text"]
    assert rows[0]["input_source"] == "common-crawl"  # the input's own "source" is kept, renamed
    assert json.loads(rows[0]["metadata"]) == first["metadata"]  # nested -> JSON string
    assert rows[0]["url"] == first["metadata"]["url"]
    assert rows[0]["source"] == "cc_en_head-0091.jsonl.gz:1"
    assert all(b.schema == batches[0].schema for b in batches)


def test_jsonl_raw_ccnet_fields_bad_line_and_type_drift(tmp_path, monkeypatch):
    import operators.readers.jsonl as jsonl_mod
    monkeypatch.setattr(jsonl_mod, "INFER_ROWS", 2)  # kinds from the first 2 records; the rest drift
    lines = [
        {"url": "http://a.org", "date_download": "2019-03-18T00:00:00Z", "digest": "sha1:AAA", "length": 10,
         "nlines": 2, "title": "A", "raw_content": "first doc", "language": "en", "language_score": 0.9,
         "perplexity": 100, "bucket": "head", "tags": ["x"]},
        {"url": "http://b.org", "digest": "sha1:BBB", "length": 11, "raw_content": "second doc", "perplexity": 12.5,
         "language_score": 1},
    ]
    text = [json.dumps(x) for x in lines] + ["{not json", "[1, 2]", ""]
    text += [json.dumps({"raw_content": "third", "length": "eleven", "perplexity": 3, "surprise": 1}),
             json.dumps({"raw_content": "fourth", "length": 2.0, "nlines": 2**70, "tags": "y"})]
    p = tmp_path / "ccnet.jsonl.gz"
    p.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    assert detect_format(str(p)) == "jsonl"
    reader, rows, batches = read_all(p, batch_size=2)
    assert reader.stats["skipped"] == {"bad_json": 2}
    assert reader.errors == []
    assert [r["text"] for r in rows] == ["first doc", "second doc", "third", "fourth"]
    assert rows[0]["id"] == "sha1:AAA" and rows[1]["id"] == "sha1:BBB"
    assert re.fullmatch(r"[0-9a-f]{40}", rows[2]["id"])
    assert rows[0]["date"] == "2019-03-18T00:00:00Z" and rows[0]["date_download"] == "2019-03-18T00:00:00Z"
    assert "raw_content" not in batches[0].schema.names
    assert all(b.schema == batches[0].schema for b in batches)
    types = {f.name: f.type for f in batches[0].schema}
    assert types["length"] == pa.int64() and types["perplexity"] == pa.float64()
    assert types["tags"] == pa.string() and json.loads(rows[0]["tags"]) == ["x"]
    assert rows[2]["length"] is None and rows[3]["length"] == 2  # "eleven" cannot be an int
    assert rows[3]["tags"] == '"y"'  # a JSON column stays JSON
    assert reader.stats["coerced"]["length"] == 1 and reader.stats["coerced"]["surprise"] == 1
    assert rows[1]["perplexity"] == 12.5 and rows[2]["perplexity"] == 3.0


def test_jsonl_text_field_and_missing_text(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in [
        {"id": 7, "body": "hello", "source": "s", "_key": 1, "html": "<p>x</p>"},
        {"id": "b", "other": 1},
    ]))
    reader, rows, _ = read_all(p, text_field="body")
    assert rows[0]["id"] == "7" and rows[0]["text"] == "hello" and rows[0]["html"] == "<p>x</p>"
    assert rows[0]["input_source"] == "s" and rows[0]["input_key"] == 1
    assert rows[1][DROP_REASON] == "missing_text"


def test_jsonl_truncated_gzip(shared_data, tmp_path):
    data = (shared_data / "ccnet-reference/cc_en_head-0174.jsonl.gz").read_bytes()
    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    reader, rows, _ = read_all(p)
    assert 1 <= len(rows) < 10
    assert len(reader.errors) == 1 and "truncated" in reader.errors[0]


# ---------------------------------------------------------------- Parquet

def test_parquet_round_trip(shared_data, tmp_path):
    _, rows, _ = read_all(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz")
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"], "url": r["url"], "n": i,
                                   "source": r["input_source"]} for i, r in enumerate(rows)])
    p = tmp_path / "docs.parquet"
    pq.write_table(table, p, row_group_size=3)
    reader, prow, batches = read_all(p, batch_size=4)
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
    reader, prow, _ = read_all(p2)
    assert prow[0]["id"] == "sha1:X" and prow[0]["text"] == "a" and prow[0]["date"] == "d1"
    assert re.fullmatch(r"[0-9a-f]{40}", prow[1]["id"]) and prow[1][DROP_REASON] == "missing_text"


def test_corrupt_parquet_reports_error(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1" + b"\x00" * 100)
    reader, rows, _ = read_all(p)
    assert rows == [] and len(reader.errors) == 1


# ---------------------------------------------------------------- detection and paths

def test_format_detection_from_content(shared_data, tmp_path):
    cases = {
        "warc/cc-main-2020-34-sample.warc.gz": "warc",
        "warc/edge/warcio-example.arc": "warc",
        "warc/edge/warcio-example.arc.gz": "warc",
        "wet/cc-main-2024-22-whirlwind.warc.wet.gz": "wet",
        "wet/ccnet-sample.wet.txt": "wet",
        "ccnet-reference/cc_en_head-0091.jsonl.gz": "jsonl",
    }
    for i, (name, fmt) in enumerate(cases.items()):
        assert detect_format(str(shared_data / name)) == fmt
        renamed = tmp_path / f"shard{i}.bin"
        shutil.copy(shared_data / name, renamed)
        assert detect_format(str(renamed)) == fmt, name
    reader, rows, _ = read_all(tmp_path / "shard0.bin")
    assert isinstance(reader, WarcReader) and len(rows) == 16
    assert rows[0]["source"].startswith("shard0.bin:")
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "t.warc.gz")  # a lying name
    assert detect_format(str(tmp_path / "t.warc.gz")) == "parquet"


def test_memory_filesystem_path(shared_data):
    fs = fsspec.filesystem("memory")
    for name in ("cc-main-2020-34-sample.warc.gz", "ccnet-sample.wet.txt"):
        folder = "warc" if name.endswith("gz") else "wet"
        with fs.open(f"/readers-test/{name}", "wb") as f:
            f.write((shared_data / folder / name).read_bytes())
    try:
        url = "memory://readers-test/cc-main-2020-34-sample.warc.gz"
        assert detect_format(url) == "warc"
        reader, rows, _ = read_all(url)
        local = read_all(shared_data / "warc/cc-main-2020-34-sample.warc.gz")[1]
        assert rows == [dict(r, source=r["source"]) for r in local]
        wet = "memory://readers-test/ccnet-sample.wet.txt"
        assert detect_format(wet) == "wet" and len(read_all(wet)[1]) == 3
    finally:
        fs.rm("/readers-test", recursive=True)


def test_samples_folder(repo):
    names = ["cc-main-2020-34-sample.warc.gz", "web-2024-sample-0000.warc.gz", "web-2024-sample-0001.warc.gz",
             "clueweb09-ja-eucjp.warc.gz", "cc-main-2024-22-whirlwind.warc.wet.gz", "ccnet-sample.wet.txt"]
    lic = (repo / "samples/LICENSES.md").read_text()
    for n in names:
        assert (repo / "samples" / n).is_file() and n in lic
    for f in re.findall(r"licenses/[\w.-]+\.txt", lic):
        assert (repo / "samples" / f).is_file(), f


def test_damaged_copies_never_raise(shared_data, tmp_path):
    """Cut, bit-flipped, zeroed and spliced copies of real shards, read with every reader: no
    exception escapes read(), and every row still has an id and a source."""
    import random

    rnd = random.Random(7)
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
        for fmt in ("auto", "warc", "wet", "jsonl", "parquet"):
            reader, rows, _ = read_all(p, fmt, batch_size=5)
            assert all(r["id"] and r["source"] for r in rows)
            assert isinstance(reader.errors, list)

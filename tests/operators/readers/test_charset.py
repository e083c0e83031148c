"""Charset decoding of captured pages: declared, meta, sniffed, and refused codecs."""
from __future__ import annotations

import re

from operators.readers import charset
from support import documents, read_shard


def test_charsets_gb2312_cp1251_are_readable(shared_data):
    _, rows, _ = read_shard(shared_data / "warc/cc-main-2020-34-sample.warc.gz")
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
    reader, rows, _ = read_shard(shared_data / "warc/clueweb09-ja-eucjp.warc.gz")
    assert reader.stats["records"] == {"warcinfo": 1, "response": 29}
    assert len(documents(rows)) == 29 and reader.errors == []
    for r in rows:
        h = r["html"]
        assert len(re.findall(r"[\u3040-\u30ff]", h)) > 100  # hiragana/katakana
        assert h.count("\ufffd") == 0
    assert all("ヘッドポーター" in r["html"] for r in rows)  # the shop name, readable


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
    reader, rows, _ = read_shard(p)
    assert [r["id"] for r in rows] == ["1", "2"] and reader.errors == []
    assert "café \\ud800" in rows[0]["html"]
    for label in ("unicode_escape", "raw-unicode-escape", "punycode", "idna"):
        assert charset.normalize(label) is None

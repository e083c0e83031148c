"""Bytes -> str for web payloads: BOM, valid UTF-8, HTTP charset, <meta> charset, then a detector.

Servers often declare the wrong charset (ISO-8859-1 on UTF-8 pages is the classic), and a strict
UTF-8 decode succeeding on non-ASCII bytes is almost never an accident, so valid UTF-8 wins over a
declaration. Declared names go through WHATWG-style aliases (gb2312 -> gb18030, latin1 -> cp1252)
because browsers decode with the superset and pages are written for browsers.
"""
from __future__ import annotations

import codecs
import re

#: Labels mapped to the encoding browsers actually use for them (WHATWG Encoding Standard).
_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "csgb2312": "gb18030",
    "chinese": "gb18030", "iso-ir-58": "gb18030", "cp936": "gb18030", "ms936": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "iso_8859-1": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "windows-31j": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ksc5601": "cp949",
    "big5": "big5hkscs", "x-x-big5": "big5hkscs", "x-euc-jp": "euc-jp", "x-mac-roman": "mac-roman",
    "unicode": "utf-16", "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8",
}
#: Labels never to trust (UTF-7 is an XSS vector; the others are not text encodings).
_REFUSED = {"utf-7", "utf7", "x-user-defined", "replacement", "binary", "none", "unknown", "auto"}
#: Python codecs that are not web charsets: escape codecs yield lone surrogates (which no Arrow
#: string can hold) from "\\ud800" in a page, and would read backslashes in HTML as escapes.
_NOT_CHARSETS = {"utf-7", "unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"}

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([^\s;\"',]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([-\w.:+]+)", re.I)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]{0,200}encoding\s*=\s*[\"']([-\w.:]+)", re.I)

#: Above this share of U+FFFD in the best decoding the bytes are not text in any charset we know.
MAX_REPLACEMENT_RATIO = 0.05
#: How many bytes the statistical detector sees (it is slow; a prefix is enough).
DETECT_BYTES = 32_768
_ASCII = bytes(range(128))


def normalize(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when unknown, bogus or refused."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name or name in _REFUSED or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return _ALIASES.get(info.name, info.name)


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _CT_CHARSET.search(content_type)
    return normalize(m.group(1)) if m else None


def charset_from_meta(head: bytes) -> str | None:
    """<meta charset>, <meta http-equiv content="...; charset=">, or an XML declaration."""
    m = _XML_DECL.match(head) or _META_CHARSET.search(head)
    if not m:
        return None
    cs = normalize(m.group(1).decode("ascii", "ignore"))
    # A page served as bytes cannot really be UTF-16 when its <meta> is readable as ASCII.
    return "utf-8" if cs and cs.startswith("utf-16") else cs


def bom_charset(data: bytes) -> tuple[str | None, int]:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None, 0


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:DETECT_BYTES]).best()
        return normalize(best.encoding) if best is not None else None
    except Exception:  # noqa: BLE001 - the detector is a hint; never let it fail a page
        return None


def decode(data: bytes, declared: str | None = None, html: bool = True) -> tuple[str | None, str | None]:
    """Decode a payload. Returns (text, encoding used); text is None when nothing decodes acceptably.

    `declared` is the HTTP Content-Type header (or just a charset label).
    """
    if not data:
        return "", "utf-8"
    enc, skip = bom_charset(data)
    if enc:
        return data[skip:].decode(enc, "replace"), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates: list[str] = []
    http_cs = charset_from_content_type(declared) if declared and ("=" in declared or "/" in declared) \
        else normalize(declared)
    for cs in (http_cs, charset_from_meta(data[:4096]) if html else None):
        if cs and cs not in candidates and cs != "utf-8":
            candidates.append(cs)
    best: tuple[int, str, str] | None = None
    for cs in candidates:
        try:
            return data.decode(cs), cs
        except UnicodeDecodeError:
            text = data.decode(cs, "replace")
            bad = text.count("\ufffd")
            if best is None or bad < best[0]:
                best = (bad, text, cs)
        except LookupError:
            continue
    # A statistical detector guesses wildly on a few non-ASCII bytes (a short cp1252 page comes out
    # as Big5): below this many, the browser default cp1252 is the better guess.
    few = len(data[:DETECT_BYTES].translate(None, _ASCII)) < 32
    if few and "cp1252" not in candidates:
        candidates.append("cp1252")
        text = data.decode("cp1252", "replace")
        bad = text.count("\ufffd")
        if best is None or bad < best[0]:
            best = (bad, text, "cp1252")
    if not few and (best is None or best[0] > len(best[1]) * 0.001):
        cs = _detect(data)
        if cs and cs not in candidates:
            try:
                text = data.decode(cs, "replace")
                bad = text.count("\ufffd")
                if best is None or bad < best[0]:
                    best = (bad, text, cs)
            except LookupError:
                pass
    if best is None:
        text = data.decode("utf-8", "replace")
        best = (text.count("\ufffd"), text, "utf-8")
    bad, text, cs = best
    if bad > MAX_REPLACEMENT_RATIO * max(len(text), 1):
        return None, cs
    return text, cs

"""WARC and ARC reader: HTML and text responses -> documents, everything else counted.

Our own record parser (on `stream.ByteStream`) so that a truncated gzip member, a wrong
Content-Length or a header without WARC-Type ends or skips cleanly with a message and the records
before it kept. Payloads that are documents but unusable (PDF, images, oversized, undecodable) become
rows with a `_drop_reason` so the engine's accounting of responses adds up.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from engine.errors import StorageError
from engine.io import open_input
from engine.reader import Reader
from engine.registry import register

from . import charset
from .base import RowBuffer, basename, check_params, stable_id
from .stream import ByteStream

_VERSION = re.compile(rb"^WARC/\d+\.\d+\s*$")
_HEADER_LIMIT = 1 << 16
_MAX_HEADERS = 512
_WEB_SCHEMES = ("http", "https", "ftp", "file")

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
#: application/* types that are text but not documents (scripts, data, feeds).
_TEXTUAL_APP = {"json", "javascript", "x-javascript", "ecmascript", "xml", "rss+xml", "atom+xml", "ld+json",
                "x-www-form-urlencoded", "rdf+xml", "xslt+xml", "manifest+json", "x-sh", "x-httpd-php"}
#: Declared types that say nothing; the payload is sniffed instead.
_UNKNOWN_TYPES = {"", "unk", "unknown", "no-type", "none", "application/unknown", "application/x-unknown",
                  "content/unknown", "*/*"}
_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\xd0\xcf\x11\xe0", b"RIFF",
          b"ID3", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf", b"Rar!", b"wOFF", b"wOF2", b"OggS", b"fLaC",
          b"\x00\x00\x01\x00", b"MZ", b"\x7fELF", b"{\\rtf", b"\xca\xfe\xba\xbe", b"II*\x00", b"MM\x00*",
          b"\x28\xb5\x2f\xfd", b"FWS", b"CWS", b"\x1aE\xdf\xa3")
_HTML_SNIFF = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|title|meta)\b",
                         re.I | re.S)


@dataclass
class Record:
    offset: str
    headers: dict[str, str]
    block: bytes | None  # None when not read (too large, or not a document type)
    length: int
    truncated: bool = False
    arc: bool = False

    @property
    def type(self) -> str:
        return (self.headers.get("warc-type") or "untyped").strip().lower() or "untyped"


class ParseStop(Exception):
    """Raised inside the parser when the shard cannot be read further (message goes to errors)."""


def _is_blank(line: bytes) -> bool:
    return not line.strip(b"\x00\r\n \t")


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    last = None
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line[:1] in (" ", "\t") and last:
            out[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip().lower()
        out.setdefault(last, value.strip())
    return out


def _next_line(s: ByteStream) -> bytes | None:
    """The next non-blank line; None at a clean end of input, ParseStop when the stream broke."""
    line = s.readline()
    while line and _is_blank(line):
        line = s.readline()
    if not line:
        if s.error:
            raise ParseStop(s.error)
        return None
    return line


def iter_records(s: ByteStream, want, max_bytes: int, line_mode: bool = False) -> Iterator[Record]:
    """Records of a WARC (or ARC) stream. `want(headers)` says whether to keep the block in memory.

    In line mode (WET) a block runs to the next `WARC/x.y` line, whatever Content-Length says:
    CCNet's WET files count characters there, not bytes.
    """
    first = True
    while True:
        line = _next_line(s)
        if line is None:
            return
        start = s.pos - len(line)
        offset = s.offset_of(start)
        if first and line.startswith(b"filedesc://"):
            yield from _arc_records(s, line, offset, want, max_bytes)
            return
        if not _VERSION.match(line):
            if s.error:
                raise ParseStop(s.error)
            hint = "" if first else " (wrong Content-Length before it?)"
            raise ParseStop(f"no WARC record at offset {offset}{hint}: {line[:60]!r}")
        hlines = []
        while True:
            h = s.readline(_HEADER_LIMIT)
            if not h:
                raise ParseStop(s.error or f"truncated record header at offset {offset}")
            if _is_blank(h):
                break
            hlines.append(h)
            if len(hlines) > _MAX_HEADERS:
                raise ParseStop(f"record header at offset {offset} has more than {_MAX_HEADERS} lines")
        headers = _parse_headers(hlines)
        first = False
        if line_mode:
            rec = _line_block(s, headers, offset, want, max_bytes)
            yield rec
            if rec.truncated:
                raise ParseStop(s.error or f"truncated record at offset {offset}")
            continue
        try:
            length = int(headers.get("content-length", "").strip())
            if length < 0:
                raise ValueError
        except ValueError:
            raise ParseStop(f"record at offset {offset} has no valid Content-Length "
                            f"({headers.get('content-length')!r})") from None
        keep = want(headers) and length <= max_bytes
        if keep:
            block = s.read(length)
            got = len(block)
        else:
            block = None
            got = s.skip(length)
        rec = Record(offset, headers, block, length, truncated=got < length)
        if rec.truncated:
            yield rec
            raise ParseStop(s.error or f"truncated record at offset {offset}: file ends after {got} of "
                                       f"{length} bytes")
        yield rec


def _line_block(s: ByteStream, headers, offset, want, max_bytes) -> Record:
    keep = want(headers)
    parts: list[bytes] = []
    size = 0
    while True:
        nxt = s.peekline()
        if not nxt or _VERSION.match(nxt):
            break
        s.readline()
        size += len(nxt)
        if keep and size <= max_bytes:
            parts.append(nxt)
    block = b"".join(parts) if keep and size <= max_bytes else None
    rec = Record(offset, headers, block, size)
    if s.error:
        rec.truncated = True
    return rec


def _arc_records(s: ByteStream, line: bytes, offset: str, want, max_bytes) -> Iterator[Record]:
    """ARC v1/v2: a one-line header `URL IP DATE MIME [...] LENGTH` then LENGTH bytes."""
    version = 1
    while True:
        fields = line.decode("latin-1").split()
        nfixed = 9 if version == 2 else 4
        try:
            length = int(fields[-1])
            if length < 0 or len(fields) < nfixed + 1:
                raise ValueError
        except (ValueError, IndexError):
            raise ParseStop(f"bad ARC record header at offset {offset}: {line[:80]!r}") from None
        url = "%20".join(fields[: len(fields) - nfixed])
        date = fields[len(fields) - nfixed + 1] if version == 1 else fields[-8]
        mime = fields[len(fields) - nfixed + 2] if version == 1 else fields[-7]
        filedesc = url.startswith("filedesc://")
        http = url.lower().startswith(("http:", "https:"))
        headers = {"warc-type": "warcinfo" if filedesc else "response", "warc-target-uri": url,
                   "warc-date": _arc_date(date),
                   "content-type": "application/http; msgtype=response" if http else mime}
        keep = (filedesc or want(headers)) and length <= max_bytes
        block = s.read(length) if keep else None
        got = len(block) if block is not None else s.skip(length)
        rec = Record(offset, headers, None if filedesc else block, length, truncated=got < length, arc=True)
        if filedesc and block and block.lstrip()[:1] == b"2":  # the version block: "2 0 name"
            version = 2
        yield rec
        if rec.truncated:
            raise ParseStop(s.error or f"truncated ARC record at offset {offset}: {got} of {length} bytes")
        line = _next_line(s)
        if line is None:
            return
        offset = s.offset_of(s.pos - len(line))


def _arc_date(d: str) -> str:
    d = d.strip()
    if len(d) >= 14 and d[:14].isdigit():
        return f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"
    return d


# ---------------------------------------------------------------- HTTP payloads

def parse_http(block: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """Status, headers (lowercase names) and body of an HTTP response block; None if not HTTP."""
    end = None
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = block.find(sep, 0, _HEADER_LIMIT)
        if i >= 0 and (end is None or i < end[0]):
            end = (i, len(sep))
    if end is None:
        if not block.startswith(b"HTTP/"):
            return None
        head, body = block, b""
    else:
        head, body = block[: end[0]], block[end[0] + end[1]:]
    lines = head.split(b"\n")
    status_line = lines[0].decode("latin-1").strip()
    if not status_line.upper().startswith("HTTP/"):
        return None
    parts = status_line.split(None, 2)
    try:
        status = int(parts[1][:3])
    except (IndexError, ValueError):
        status = 0
    return status, _parse_headers(lines[1:]), body


def dechunk(body: bytes) -> bytes | None:
    """Undo Transfer-Encoding: chunked; None when the body is not validly chunked."""
    out = bytearray()
    pos = 0
    n = len(body)
    while pos < n:
        eol = body.find(b"\n", pos, pos + 1024)
        if eol < 0:
            return None
        size_s = body[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            return None
        pos = eol + 1
        if size == 0:
            return bytes(out)
        if pos + size > n:
            out += body[pos:]  # last chunk cut short: keep what is there
            return bytes(out)
        out += body[pos: pos + size]
        pos += size
        while pos < n and body[pos: pos + 1] in (b"\r", b"\n"):
            pos += 1
            if body[pos - 1: pos] == b"\n":
                break
    return bytes(out)


def decompress(body: bytes, coding: str, limit: int) -> bytes | None:
    """Undo Content-Encoding (gzip, deflate; br when the brotli module exists).

    Returns None if it cannot; raises OverflowError past `limit` decoded bytes (a bomb or a huge page).
    """
    coding = coding.strip().lower()
    if coding in ("gzip", "x-gzip", "deflate"):
        for wbits in ((47, -15) if coding != "deflate" else (15, -15, 47)):
            try:
                d = zlib.decompressobj(wbits)
                out = d.decompress(body, limit + 1)
                if len(out) > limit:
                    raise OverflowError
                return out
            except zlib.error:
                continue
        return None
    if coding == "br":
        try:
            import brotli  # type: ignore[import-not-found]
        except ImportError:
            return None
        try:
            out = brotli.decompress(body)
        except Exception:  # noqa: BLE001
            return None
        if len(out) > limit:
            raise OverflowError
        return out
    return None


def is_binary(data: bytes) -> bool:
    """Magic numbers or NUL bytes in the head (UTF-16/32 with a BOM are text)."""
    head = data[:1024]
    if head.startswith(_MAGIC) or head[4:8] == b"ftyp":
        return True
    if charset.bom_charset(head)[0]:
        return False
    return b"\x00" in head


def looks_textual(data: bytes) -> bool:
    """No control bytes at the start: markup or text in any charset (ESC kept for ISO-2022-JP), not
    a compressed stream, where 512 random bytes always hold some."""
    head = data[:512]
    return len(head.translate(None, _TEXT_BYTES)) <= len(head) // 100


_TEXT_BYTES = bytes(b for b in range(256) if b >= 32 or b in (9, 10, 12, 13, 27))


def classify(mime: str, payload: bytes) -> str:
    """'html', 'text', or the drop reason for a payload."""
    if is_binary(payload):
        return "binary_payload"
    looks_html = bool(_HTML_SNIFF.match(payload[:2048]))
    if mime in HTML_TYPES:
        return "html"
    if mime in TEXT_TYPES:
        return "html" if looks_html else "text"
    if mime in _UNKNOWN_TYPES or mime in ("application/octet-stream", "binary/octet-stream"):
        if looks_html:
            return "html"
        if mime in _UNKNOWN_TYPES:  # no type at all: like a browser, sniff text as text/plain
            return "text" if looks_textual(payload) else "binary_payload"
        return "binary_payload"
    major, _, minor = mime.partition("/")
    if major in ("image", "audio", "video", "font", "model", "multipart"):
        return "binary_payload"
    if major == "application" and minor not in _TEXTUAL_APP and not minor.endswith(("+xml", "+json")):
        return "binary_payload"
    return "unsupported_type"


def clean_url(uri: str | None) -> str | None:
    if uri is None:
        return None
    u = uri.strip().strip("<>").strip()
    return u.replace(" ", "%20") or None


def record_id(headers: dict[str, str]) -> str | None:
    rid = headers.get("warc-record-id", "").strip().strip("<>").strip()
    if rid.lower().startswith("urn:uuid:"):
        rid = rid[9:]
    return rid or None


@register
class WarcReader(Reader):
    """WARC/ARC shards -> `html` (or `text` for text/plain) documents."""

    name: ClassVar[str] = "warc"
    content_column: ClassVar[str] = "html"
    columns: ClassVar[tuple[str, ...]] = ("html",)
    transient_columns: ClassVar[tuple[str, ...]] = ("html",)
    suffixes: ClassVar[tuple[str, ...]] = (".warc", ".arc", ".wat")
    #: A file that looks like nothing known goes to this reader, which says why it cannot read it.
    fallback: ClassVar[bool] = True
    #: Options a job may pass (input.options).
    OPTIONS: ClassVar[set[str]] = {"max_bytes", "max_batch_bytes", "keep_non_2xx"}
    line_mode: ClassVar[bool] = False

    def __init__(self, max_bytes: int = 10_000_000, max_batch_bytes: int = 64 << 20,
                 keep_non_2xx: bool = False, **params: Any) -> None:
        check_params(self.name, params, set())
        super().__init__(max_bytes=max_bytes, max_batch_bytes=max_batch_bytes, keep_non_2xx=keep_non_2xx)
        self.max_bytes = int(max_bytes)
        self.max_batch_bytes = int(max_batch_bytes)
        self.keep_non_2xx = bool(keep_non_2xx)

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"WARC/", b"filedesc://"))

    # -------------------------------------------------------------- reading
    def read(self, path: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        rows = RowBuffer(batch_size, self.max_batch_bytes)
        name = basename(path)
        try:
            f = open_input(path, "rb")
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001 - a missing/unreadable shard is reported, not raised
            self.errors.append(f"cannot open: {type(e).__name__}: {e}")
            return
        with f:
            try:
                stream = ByteStream(f)
            except StorageError:
                raise
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"read error: {type(e).__name__}: {e}")
                return
            records = iter_records(stream, self._want, self.max_bytes, self.line_mode)
            seen: set[str] = set()
            last_offset = "0"
            while True:
                try:
                    rec = next(records)
                    last_offset = rec.offset
                    self._row(rec, name, rows, seen)
                except StopIteration:
                    break
                except ParseStop as e:
                    self.errors.append(str(e))
                    break
                except StorageError:
                    raise
                except Exception as e:  # noqa: BLE001 - bad data must not escape read()
                    self.errors.append(f"reader error after record at offset {last_offset}: "
                                       f"{type(e).__name__}: {e}")
                    break
                if rows.full():
                    yield rows.flush()
        if rows.n:
            yield rows.flush()

    def _want(self, headers: dict[str, str]) -> bool:
        t = (headers.get("warc-type") or "").strip().lower()
        return t in ("response", "resource", "conversion")

    def _row(self, rec: Record, name: str, rows: RowBuffer, seen: set[str]) -> None:
        rtype = rec.type
        self.count("records", rtype)
        h = rec.headers
        url = clean_url(h.get("warc-target-uri"))
        if rtype not in ("response", "resource", "conversion"):
            self.count("skipped", rtype)
            return
        scheme = (url or "").split(":", 1)[0].lower()
        wct = (h.get("content-type") or "").strip()
        if scheme == "dns" or wct.lower().startswith("text/dns"):
            self.count("skipped", "dns")
            return
        if rtype == "resource" and scheme not in _WEB_SCHEMES:
            self.count("skipped", "resource_nonweb")  # crawler logs, manifests (metadata://...)
            return
        rid = record_id(h)
        if rid is None:
            rid = stable_id(name, rec.offset)
        elif rid in seen:  # some tools reuse ids; keep ids unique within a shard, stably
            rid = f"{rid}@{rec.offset}"
        seen.add(rid)
        base = dict(id=rid, url=url, date=h.get("warc-date") or None, source=f"{name}:{rec.offset}")
        if rec.truncated:
            rows.add(**base, reason="truncated")
            return
        if rec.block is None:
            rows.add(**base, reason="too_large")
            return
        kind, payload, reason, declared = self._payload(rec, rtype, wct)
        if reason:
            rows.add(**base, reason=reason)
            return
        if not payload.strip():
            rows.add(**base, reason="empty")
            return
        text, _ = charset.decode(payload, declared, html=kind == "html")
        if text is None:
            rows.add(**base, reason="undecodable")
        elif kind == "html":
            rows.add(**base, html=text)
        else:
            text = text.replace("\r\n", "\n").strip("\n")
            rows.add(**base, text=text) if text.strip() else rows.add(**base, reason="empty")

    def _payload(self, rec: Record, rtype: str, wct: str) -> tuple[str, bytes, str | None, str | None]:
        """(kind, payload bytes, drop reason, declared Content-Type) after HTTP parsing, dechunking
        and decompression."""
        block = rec.block or b""
        if rtype == "conversion":
            return "text", block, None, wct or None
        if rtype == "response" and ("application/http" in wct.lower() or block[:5] == b"HTTP/"):
            parsed = parse_http(block)
            if parsed is None:
                return "", b"", "bad_http", None
            status, hh, body = parsed
            if not (200 <= status < 300) and not self.keep_non_2xx:
                return "", b"", "http_status", None
            if "chunked" in hh.get("transfer-encoding", "").lower():
                unchunked = dechunk(body)
                body = body if unchunked is None else unchunked
            coding = hh.get("content-encoding", "").strip().lower()
            if coding and coding not in ("identity", "none", "utf-8", "utf8"):
                for c in reversed([c for c in coding.split(",") if c.strip()]):
                    try:
                        out = decompress(body, c, self.max_bytes)
                    except OverflowError:
                        return "", b"", "too_large", None
                    if out is None:
                        if not looks_textual(body):  # really compressed, but we cannot undo it
                            return "", b"", "undecodable", None
                        break  # archivers often store the decoded body with the header left in place
                    body = out
            elif body[:2] == b"\x1f\x8b":
                try:
                    body = decompress(body, "gzip", self.max_bytes) or body
                except OverflowError:
                    return "", b"", "too_large", None
            ctype = hh.get("content-type", "")
        else:
            body, ctype = block, wct
        if len(body) > self.max_bytes:
            return "", b"", "too_large", None
        mime = ctype.split(";", 1)[0].strip().lower()
        kind = classify(mime, body)
        if kind not in ("html", "text"):
            return "", b"", kind, None
        return kind, body, None, ctype or None

"""WARC and ARC reader: HTML and text responses -> documents, everything else counted.

Our own record parser (on `stream.ByteStream`) so that damage costs only the damaged record: a
wrong Content-Length or an unparseable header becomes a reject row and parsing resumes at the next
record (next gzip member, or next `WARC/x.y` line); a truncated or corrupt gzip member ends the
shard with a message and the records before it kept. Payloads that are documents but unusable (PDF,
images, oversized, undecodable) are rows with a `_drop_reason` too, so the engine's accounting adds
up.

A big gzip file splits at member boundaries (`split`): a scan parses it as `read` does, skipping
every block undecoded, and cuts only where a record starts a member with the parser in its plain
state (after a record that filled its member, no resync pending), counting the rows before it;
a range is then read from that member as the whole file is read there.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from engine.errors import StorageError
from engine.reader import Reader, ShardRange
from engine.registry import register

from . import charset
from .base import RowBuffer, basename, check_params, stable_id
from .stream import CHUNK, ByteStream

_VERSION = re.compile(rb"^WARC/\d+\.\d+\s*$")
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
#: A named header field: `Name: value` (a line without a colon is damage, not a header).
_HEADER_LINE = re.compile(_TOKEN + rb"[ \t]*:")
#: Where a record begins: the version line, then a header field (or the end of the input).
_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+[ \t]*\r?\n")
_RECORD_START = re.compile(_VERSION_LINE.pattern + rb"(?:" + _TOKEN + rb"[ \t]*:|\Z)")
#: A record start whose version line is damaged: a short line without a colon, then a WARC field.
#: After a block and a blank line it says the block's length was right and the next record is the
#: damaged one.
_DAMAGED_START = re.compile(rb"[^\r\n:]{1,64}\r?\nWARC-[A-Za-z-]+[ \t]*:")
#: Where the parser may resume after damage: a record start; after a blank line, also a version line
#: before a damaged header, or a damaged version line.
_RESYNC_START = re.compile(_RECORD_START.pattern + rb"|(?:(?<=\n\r\n)|(?<=\n\n))(?:" +
                           _VERSION_LINE.pattern + rb"|" + _DAMAGED_START.pattern + rb")")
#: Bytes between records: the \r\n\r\n separator, and the padding some writers leave.
_PAD = b"\x00\r\n \t"
#: How far past a block the framing check looks for the separator and the next record.
_TAIL = 4096
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
    #: Why the record could not be framed or parsed (`bad_content_length`, `bad_record_header`);
    #: such a record is a reject row, and the parser has resynchronised after it.
    damage: str | None = None

    @property
    def type(self) -> str:
        return (self.headers.get("warc-type") or "untyped").strip().lower() or "untyped"


class ParseStop(Exception):
    """Raised inside the parser when the shard cannot be read further (message goes to errors)."""


def _is_blank(line: bytes) -> bool:
    return not line.strip(_PAD)


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


def _read_header(s: ByteStream) -> tuple[dict[str, str], str | None]:
    """The named fields of a WARC record header, read up to its blank line, and what is wrong with
    it: None, "truncated" (the input ends inside it), or why it cannot be parsed (then the read
    stops at the bad line)."""
    found = _buffered_header(s)
    if found is not None:
        return found
    lines: list[bytes] = []
    while True:
        h = s.readline(_HEADER_LIMIT)
        if not h:
            return _parse_headers(lines), "truncated"
        if _is_blank(h):
            return _parse_headers(lines), None
        if not h.endswith(b"\n"):
            if len(h) < _HEADER_LIMIT:
                return _parse_headers(lines), "truncated"
            return _parse_headers(lines), "header line too long"
        if h[:1] in (b" ", b"\t") and lines:
            lines.append(h)  # a folded continuation of the previous field
            continue
        if not _HEADER_LINE.match(h):
            return _parse_headers(lines), "not a header line"
        if len(lines) >= _MAX_HEADERS:
            return _parse_headers(lines), f"more than {_MAX_HEADERS} header lines"
        lines.append(h)


#: A blank line after a line end: where a header buffered whole ends.
_HEADER_END = re.compile(rb"\n[\x00\r \t]*\n")


def _buffered_header(s: ByteStream) -> tuple[dict[str, str], str | None] | None:
    """`_read_header` on a header already buffered to its blank line (nothing is read ahead: a broken
    stream is found where it was), its lines checked in place instead of read one by one (the same
    checks, in the same order, consuming as much); None when the blank line is not buffered or comes
    first (the line-by-line reading decides then)."""
    buf, lo, hi = s.window(_HEADER_LIMIT)
    m = _HEADER_END.search(buf, lo, hi)
    if m is None or _BLANK_LINE.match(buf, lo, hi):
        return None
    lines: list[bytes] = []
    at = lo
    for h in bytes(buf[lo:m.start()]).split(b"\n"):
        at += len(h) + 1
        if h[:1] in (b" ", b"\t") and lines:
            lines.append(h)  # a folded continuation of the previous field
            continue
        problem = ("not a header line" if not _HEADER_LINE.match(h) else
                   f"more than {_MAX_HEADERS} header lines" if len(lines) >= _MAX_HEADERS else None)
        if problem:
            s.advance(at - lo)
            return _parse_headers(lines), problem
        lines.append(h)
    s.advance(m.end() - lo)
    return _parse_headers(lines), None


def _content_length(headers: dict[str, str]) -> int | None:
    """The declared block length; None when missing, not a decimal number, or negative."""
    v = headers.get("content-length", "").strip()
    return int(v) if v.isascii() and v.isdigit() else None


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


def _tail_ok(s: ByteStream, end: int) -> tuple[bool, bool]:
    """After a block ending `end` bytes past the read position: (do the record separator and the
    next record start, or the end of the input, follow it; does a gzip member end there)."""
    pad = s.peek_at(end, 64)
    rest = pad.lstrip(_PAD)
    if not rest and len(pad) == 64:  # a long run of padding: look further
        pad = s.peek_at(end, _TAIL)
        rest = pad.lstrip(_PAD)
    q = end + len(pad) - len(rest)  # first byte after the separator
    e = s.pos + end
    if s.member_starts_in(e - 1, s.pos + q):
        return True, True
    if not rest:  # the input ends (or a run of padding longer than we look at)
        return True, s.ensure(q + 1) <= q
    head = s.peek_at(q, 512)
    if _VERSION_LINE.match(head):  # the next record starts here (its header may still be damaged)
        return True, False
    sep = pad[: q - end]  # a damaged next record only after a whole separator (a blank line)
    return bool((b"\n\r\n" in sep or b"\n\n" in sep) and _DAMAGED_START.match(head)), False


def _starts_record(s: ByteStream, delta: int) -> bool:
    """Does a record (maybe with a damaged version line) start `delta` bytes past the read
    position, after padding? Asked at gzip member starts."""
    head = s.peek_at(delta, 1024).lstrip(_PAD)
    return bool(_RECORD_START.match(head) or _DAMAGED_START.match(head))


def _aligned(s: ByteStream, start: int, own_member: bool | None) -> bool:
    """Is the record at `start` one gzip member of its own (then the next record is the next
    member)? Yes when it starts a member and the record before filled one (for the first record:
    when the file has more than one member). Asked when needed: looking ahead decodes members."""
    per_member = s.member_count > 1 if own_member is None else own_member
    return per_member and s.is_member_start(start)


def _resync(s: ByteStream, start: int, aligned: bool, line_start: bool = True) -> bool:
    """Move to the next record start after a damaged record that began at decoded position `start`:
    the next gzip member when records are one per member, else the next `WARC/x.y` line followed
    by a header field. Returns whether the next record starts a member of its own."""
    if aligned:
        s.skip_to_member_after(start)
        return True
    s.scan_to(_RESYNC_START, line_start)
    return False


def iter_records(s: ByteStream, want, max_bytes: int, line_mode: bool = False, resume: bool = False,
                 on_record_start=None) -> Iterator[Record]:
    """Records of a WARC (or ARC) stream. `want(headers)` says whether to keep the block in memory.

    `resume`: the stream starts at a gzip member where, reading the whole file, a record began right
    after one that filled a member of its own (a range of a split file): parsing goes on as it
    would have there. `on_record_start(s, clean)` is called where the parser looks for the next
    record; `clean` says that its state there is the one `resume` starts with (a range may begin
    there).

    A record whose Content-Length is missing, not a number, or wrong (the bytes after the declared
    block are not a record separator and the next record start) or whose header cannot be parsed is
    yielded with `damage` set, and parsing resumes at the next record: the next gzip member when the
    file is one record per member (the usual layout), else the next `WARC/x.y` line followed by a
    header field, looked for from the end of the damaged header (a Content-Length too long may have
    swallowed the records after it). Look-ahead is bounded by `max_bytes` plus a few KB; a larger
    block is skipped as a stream, and found wrong, is scanned again from its start (the file is
    sought back; a stream that cannot seek is scanned on from where the block ended).
    What framing cannot tell: a length that ends exactly where a later record starts (the records
    between are read as this one's block), and, outside one-record-per-member gzip, a length that
    runs past the end of the file with no record after it (read as a truncated last record).

    In line mode (WET) a block runs to the next `WARC/x.y` line, whatever Content-Length says:
    CCNet's WET files count characters there, not bytes.
    """
    first = not resume
    resynced = False  # did the parser just skip past a damaged record?
    own_member: bool | None = True if resume else None  # did the last record fill a gzip member of its own?
    while True:
        if on_record_start is not None:
            on_record_start(s, not first and not resynced and (line_mode or own_member is True))
        line = _next_line(s)
        if line is None:
            return
        start = s.pos - len(line)
        offset = s.offset_of(start)
        if first and line.startswith(b"filedesc://"):
            yield from _arc_records(s, line, offset, want, max_bytes)
            return
        aligned = functools.partial(_aligned, s, start, own_member)

        if not _VERSION.match(line):
            if s.error:
                raise ParseStop(s.error)
            damaged_start = bool(_DAMAGED_START.match(line + s.peek_at(0, 256)))
            if first and not damaged_start:
                raise ParseStop(f"no WARC record at offset {offset}: {line[:60]!r}")
            # bytes where a record should start; right after a resync, the rest of the damaged one
            if damaged_start or not resynced:
                yield Record(offset, {}, None, 0, damage="bad_record_header")
            first = False
            own_member = _skip_line_block(s) if line_mode else _resync(s, start, aligned(), line.endswith(b"\n"))
            resynced = True
            continue
        first = resynced = False
        headers, problem = _read_header(s)
        if problem == "truncated":
            yield Record(offset, headers, None, 0, truncated=True)
            raise ParseStop(s.error or f"truncated record header at offset {offset}")
        if problem:
            yield Record(offset, headers, None, 0, damage="bad_record_header")
            own_member = (_skip_line_block(s) if line_mode else
                          _resync(s, start, aligned(), problem != "header line too long"))
            resynced = True
            continue
        if line_mode:
            rec = _line_block(s, headers, offset, want, max_bytes)
            yield rec
            if rec.truncated:
                raise ParseStop(s.error or f"truncated record at offset {offset}")
            continue
        length = _content_length(headers)
        if length is None:
            yield Record(offset, headers, None, 0, damage="bad_content_length")
            own_member = _resync(s, start, aligned())
            resynced = True
            continue
        if length <= max_bytes:
            rec, own_member = yield from _framed_block(s, headers, offset, start, length, want, aligned)
        else:
            rec, own_member = yield from _streamed_block(s, headers, offset, start, length, aligned)
        if rec is not None:
            yield rec
        resynced = rec is None


def _framed_block(s: ByteStream, headers, offset, start, length, want, aligned):
    """A block of at most max_bytes, looked at before it is consumed: its framing is checked, and on
    damage the scan for the next record starts right after the header, still buffered. Returns (the
    record or None, whether it fills a gzip member of its own); a damaged record is yielded here."""
    h = s.pos
    got = s.ensure(length + _TAIL)
    nxt = next((b for b in s.member_starts_in(h, h + min(got, length) - 1) if _starts_record(s, b - h)), None)
    if nxt is not None and aligned():  # declared past its gzip member, and a record starts the next one
        s.skip(nxt - h)
        yield Record(offset, headers, None, length, damage="bad_content_length")
        return None, True
    if got < length:  # the input ends inside the declared block
        if aligned():
            s.skip(got)
            if s.error:
                yield Record(offset, headers, None, length, truncated=True)
                raise ParseStop(s.error)
            yield Record(offset, headers, None, length, damage="bad_content_length")
            return None, True
        if s.scan_to(_RESYNC_START):  # a record starts inside: the length was wrong, not the file cut
            yield Record(offset, headers, None, length, damage="bad_content_length")
            return None, False
        yield Record(offset, headers, None, length, truncated=True)
        raise ParseStop(s.error or f"truncated record at offset {offset}: file ends after {got} of "
                                   f"{length} bytes")
    ok, at_member_end = _tail_ok(s, length)
    if not ok:
        yield Record(offset, headers, None, length, damage="bad_content_length")
        return None, _resync(s, start, aligned())
    block = s.read(length) if want(headers) else None
    if block is None:
        s.skip(length)
    return Record(offset, headers, block, length), s.is_member_start(start) and at_member_end


def _streamed_block(s: ByteStream, headers, offset, start, length, aligned):
    """A block larger than max_bytes, skipped without holding it (it becomes a `too_large` row when
    it is a document); on damage the file is read again from the end of the header."""
    h = s.pos
    per_member = aligned()
    got = 0
    while got < length:
        got += s.skip_in_member(length - got) if per_member else s.skip(length - got)
        if not (got < length and per_member and s.is_member_start(s.pos) and not _starts_record(s, 0)):
            break  # (a member that does not start a record continues this one: read on)
    if got < length:
        if per_member:  # a member boundary (or the end) came first: declared too long
            if s.error:
                yield Record(offset, headers, None, length, truncated=True)
                raise ParseStop(s.error)
            yield Record(offset, headers, None, length, damage="bad_content_length")
            return None, True
        if s.seek(h) and s.scan_to(_RESYNC_START):
            yield Record(offset, headers, None, length, damage="bad_content_length")
            return None, False
        yield Record(offset, headers, None, length, truncated=True)
        raise ParseStop(s.error or f"truncated record at offset {offset}: file ends after {got} of "
                                   f"{length} bytes")
    ok, at_member_end = _tail_ok(s, 0)
    if not ok:
        yield Record(offset, headers, None, length, damage="bad_content_length")
        if per_member:
            s.skip_to_member_after(start)
            return None, True
        back = s.seek(h)  # when the file cannot seek, the scan goes on from here
        s.scan_to(_RESYNC_START, back)
        return None, False
    return Record(offset, headers, None, length), s.is_member_start(start) and at_member_end


def _skip_line_block(s: ByteStream) -> bool:
    """In line mode the rest of a damaged record runs to the next `WARC/x.y` line."""
    _line_block(s, {}, "", lambda h: False, 0)
    return False


def _line_block(s: ByteStream, headers, offset, want, max_bytes) -> Record:
    """A block that runs to the next `WARC/x.y` line, or to a damaged one after a blank line (so a
    damaged record is not read as the end of this one's text)."""
    keep = want(headers)
    parts: list[bytes] = []
    size = 0
    blank = False
    while True:
        nxt = s.peekline()
        if not nxt or _VERSION.match(nxt):
            break
        if blank and len(nxt) <= 66 and _DAMAGED_START.match(s.peek_at(0, 256)):
            break
        blank = _is_blank(nxt)
        s.readline()
        if nxt.endswith(b"\n") and not blank:
            run = _plain_lines(s)
            if run:
                nxt += run
                blank = _is_blank(run[run.rfind(b"\n", 0, len(run) - 1) + 1:])
        size += len(nxt)
        if keep and size <= max_bytes:
            parts.append(nxt)
    block = b"".join(parts) if keep and size <= max_bytes else None
    rec = Record(offset, headers, block, size)
    if s.error:
        rec.truncated = True
    return rec


#: In a block of lines: a line that may end it (it starts with "WARC/", or follows a blank line).
_LINE_STOP = re.compile(rb"\n(?:(?=WARC/)|[\x00\r \t]*\n)")
_BLANK_LINE = re.compile(rb"[\x00\r \t]*\n")


def _plain_lines(s: ByteStream) -> bytes:
    """After a line end (of a line not blank), the whole lines already buffered (at most 64 KB) that
    `_line_block` would pass one by one: up to the first line that may end the block, consumed. The
    loop there looks at that one (and at lines longer than the look-ahead, cut as `peekline` cuts
    them)."""
    buf, lo, hi = s.window(CHUNK)
    if lo == hi or buf.startswith(b"WARC/", lo) or _BLANK_LINE.match(buf, lo, hi):
        return b""
    m = _LINE_STOP.search(buf, lo, hi)
    end = m.end() if m else buf.rfind(b"\n", lo, hi) + 1
    if end <= lo:
        return b""
    run = bytes(buf[lo:end])
    s.advance(end - lo)
    return run


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
            yield Record(offset, {}, None, 0, arc=True, damage="bad_record_header")
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


def _not_a_row(rec: Record, url: str | None) -> str | None:
    """Why an undamaged record is counted but not a row (its type, dns, a non-web resource), or None."""
    rtype = rec.type
    if rtype not in ("response", "resource", "conversion"):
        return rtype
    scheme = (url or "").split(":", 1)[0].lower()
    if scheme == "dns" or (rec.headers.get("content-type") or "").strip().lower().startswith("text/dns"):
        return "dns"
    if rtype == "resource" and scheme not in _WEB_SCHEMES:
        return "resource_nonweb"  # crawler logs, manifests (metadata://...)
    return None


def _row_id(rec: Record, name: str, seen: set[str]) -> tuple[str, bool]:
    """A row's id, kept unique within the file (some tools reuse record ids), and whether the
    record's own id was one seen before (then the id depends on the records before it)."""
    if rec.damage:
        rid = record_id(rec.headers) if rec.damage != "bad_record_header" else None
        repeat = rid is not None and rid in seen
        rid = stable_id(name, rec.offset) if rid is None or repeat else rid
    else:
        rid = record_id(rec.headers)
        repeat = rid is not None and rid in seen
        if rid is None:
            rid = stable_id(name, rec.offset)
        elif repeat:
            rid = f"{rid}@{rec.offset}"
    repeat = repeat or rid in seen
    seen.add(rid)
    return rid, repeat


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

    def __init__(self, max_bytes: int = 10_000_000, max_batch_bytes: int = 16 << 20,
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
    def read(self, path: str, batch_size: int, part: ShardRange | None = None) -> Iterator[pa.RecordBatch]:
        rows = RowBuffer(batch_size, self.max_batch_bytes)
        name = basename(path)
        f = self.open_shard(path)
        if f is None:
            return
        start = part.start if part is not None else 0
        end = part.end if part is not None else -1
        with f:
            try:
                if start:
                    f.seek(start)
                stream = ByteStream(f, start)
            except StorageError:
                raise
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"read error: {type(e).__name__}: {e}")
                return
            records = iter_records(stream, self._want, self.max_bytes, self.line_mode, resume=start > 0)
            seen: set[str] = set()
            last_offset = "0"
            while True:
                try:
                    rec = next(records)
                    last_offset = rec.offset
                    if end >= 0 and int(rec.offset.split("+", 1)[0]) >= end:
                        break  # the next range's first record
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
                try:
                    self._row(rec, name, rows, seen)
                except StorageError:
                    raise
                except Exception as e:  # noqa: BLE001 - one record the reader cannot handle is rejected
                    rows.add(id=stable_id(name, rec.offset), source=f"{name}:{rec.offset}",
                             reason=f"reader_error:{type(e).__name__}")
                if rows.full():
                    yield rows.flush()
        if rows.n:
            yield rows.flush()

    def split(self, path: str, target_bytes: int) -> list[ShardRange] | None:
        """Ranges at gzip members, found by parsing the file as `read` does without decoding any
        payload, so that a range starts where a record starts with the parser in the state that
        reading the whole file has there, and `first_ordinal` is the rows `read` emits before it.
        Not split: a plain or single-member file, ARC, a file whose record ids repeat (the repeat's
        id depends on the ids seen before it)."""
        name = basename(path)
        f = self.open_shard(path)
        if f is None:
            return None
        ranges: list[ShardRange] = []
        seen: set[str] = set()
        rows = 0
        clean: list[bool] = [False]  # is the parser, looking for the record it yields next, as a range starts?
        with f:
            s = ByteStream(f)
            if not s.gz:
                return None

            def on_record_start(stream: ByteStream, state_clean: bool) -> None:
                clean[0] = state_clean

            try:
                for rec in iter_records(s, lambda h: False, self.max_bytes, self.line_mode,
                                        on_record_start=on_record_start):
                    if rec.arc:
                        return None
                    # a range may start at a record that starts a gzip member (offset without +delta)
                    if clean[0] and rec.offset.isdigit() and int(rec.offset) - (ranges[-1].start if ranges else 0) >= target_bytes:
                        cut = int(rec.offset)
                        if ranges:
                            ranges[-1] = dataclasses.replace(ranges[-1], end=cut)
                        else:
                            ranges.append(ShardRange(0, cut, 0, 0))
                        ranges.append(ShardRange(cut, -1, rows, rows))
                    clean[0] = False
                    if rec.damage or not _not_a_row(rec, clean_url(rec.headers.get("warc-target-uri"))):
                        rows += 1
                        if _row_id(rec, name, seen)[1]:
                            return None
            except ParseStop:
                pass
        return ranges if len(ranges) > 1 else None

    def _want(self, headers: dict[str, str]) -> bool:
        t = (headers.get("warc-type") or "").strip().lower()
        return t in ("response", "resource", "conversion")

    def _row(self, rec: Record, name: str, rows: RowBuffer, seen: set[str]) -> None:
        h = rec.headers
        url = clean_url(h.get("warc-target-uri"))
        if rec.damage:  # whatever its header says, a record that cannot be framed is not trusted
            self.count("records", "damaged")
            rows.add(id=_row_id(rec, name, seen)[0], url=url, date=h.get("warc-date") or None,
                     source=f"{name}:{rec.offset}", reason=rec.damage)
            return
        rtype = rec.type
        self.count("records", rtype)
        skip = _not_a_row(rec, url)
        if skip:
            self.count("skipped", skip)
            return
        wct = (h.get("content-type") or "").strip()
        base = dict(id=_row_id(rec, name, seen)[0], url=url, date=h.get("warc-date") or None,
                    source=f"{name}:{rec.offset}")
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

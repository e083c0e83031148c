"""A buffered byte stream over a plain or multi-member gzip file that knows where records start.

Written instead of reusing warcio's reader because a corpus engine needs what warcio hides: the
compressed offset of every gzip member (for `source` and re-reading one record), a clear error
when a member is truncated or corrupt (warcio silently returns the partial member), bounded memory
on files that were gzipped as one member (decompression is capped per call), and, to recover from
a wrong Content-Length, looking ahead without consuming, the member boundaries, going back to a
position, and scanning for the next record start.
"""
from __future__ import annotations

import bisect
import functools
import re
import zlib

from engine.errors import StorageError

CHUNK = 1 << 16
#: Most decoded bytes produced per decompress call: bounds memory on gzip bombs.
OUT_CAP = 1 << 20
_PADDING = b"\x00\r\n \t"


class ByteStream:
    """Decoded bytes with readline/read/skip/peek; stops (never raises) on a broken gzip member.

    After a failure `error` holds a message and the stream behaves as ended, so a parser sees a short
    record and can report it as truncated.
    """

    def __init__(self, raw, offset: int = 0, plain: bool = False) -> None:
        """`offset`: where in its file `raw` is positioned (a range of a split file starts at a gzip
        member), so that compressed offsets in `source` and messages are the file's. `plain`: the
        bytes are not gzip even if they start like it (a range of a plain file)."""
        self.raw = raw
        self.buf = bytearray()
        self.start = 0  # read position inside buf
        self.base = 0  # decoded offset of buf[0]
        self.eof = False
        self.error: str | None = None
        self.produced = 0  # decoded bytes produced so far
        self.cpos = offset  # compressed offset of the next byte given to the decompressor
        self.pending = raw.read(CHUNK) or b""
        self.gz = not plain and self.pending[:2] == b"\x1f\x8b"
        self.in_member = False
        self.member_off = 0
        self.dec = None
        self.members: list[tuple[int, int]] = [] if self.gz else [(0, 0)]
        self._member_starts: list[int] = [] if self.gz else [0]
        #: gzip members begun so far (a per-record file has many, a file gzipped whole has one).
        self.member_count = 0

    # ------------------------------------------------------------ filling
    def _fail(self, msg: str) -> None:
        if self.error is None:
            self.error = msg
        self.eof = True

    def _more_raw(self) -> bytes:
        try:
            return self.raw.read(CHUNK) or b""
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001 - an I/O error ends the shard with a message
            self._fail(f"read error at offset {self.cpos}: {type(e).__name__}: {e}")
            return b""

    def _fill(self) -> bool:
        """Append decoded bytes to the buffer; False when nothing more can come."""
        while not self.eof:
            if not self.pending:
                data = self._more_raw()
                if not data:
                    if self.in_member:
                        self._fail(f"truncated gzip member at offset {self.member_off}: "
                                   f"file ends inside it (after {self.cpos} bytes)")
                    self.eof = True
                    return False
                self.pending = data
            if not self.gz:
                self.buf += self.pending
                self.cpos += len(self.pending)
                self.produced += len(self.pending)
                self.pending = b""
                return True
            if not self.in_member:
                if len(self.pending) < 2:
                    more = self._more_raw()
                    if more:
                        self.pending += more
                        continue
                if not self.pending.startswith(b"\x1f\x8b"):
                    if not self.pending.strip(_PADDING):
                        self.cpos += len(self.pending)
                        self.pending = b""
                        continue
                    self._fail(f"data at offset {self.cpos} after the last gzip member is not gzip "
                               f"({bytes(self.pending[:16])!r})")
                    return False
                self.dec = zlib.decompressobj(31)
                self.in_member = True
                self.member_off = self.cpos
                self.members.append((self.produced, self.cpos))
                self._member_starts.append(self.produced)
                self.member_count += 1
            data = self.pending
            try:
                out = self.dec.decompress(data, OUT_CAP)
            except zlib.error as e:
                self._fail(f"corrupt gzip member at offset {self.member_off}: {e}")
                return False
            if self.dec.eof:
                rest = self.dec.unused_data
                self.in_member = False
            else:
                rest = self.dec.unconsumed_tail
            self.cpos += len(data) - len(rest)
            self.pending = rest
            if out:
                self.buf += out
                self.produced += len(out)
                return True
        return False

    def _compact(self) -> None:
        if self.start > CHUNK and self.start * 2 > len(self.buf):
            del self.buf[: self.start]
            self.base += self.start
            self.start = 0

    # ------------------------------------------------------------ reading
    @property
    def pos(self) -> int:
        """Decoded offset of the next byte to read."""
        return self.base + self.start

    def offset_of(self, dpos: int) -> str:
        """The record offset for a decoded position: the gzip member's compressed offset when the
        record starts a member (the usual per-record gzip), else `member+delta`, or the plain offset."""
        if not self.gz:
            return str(dpos)
        i = bisect.bisect_right(self._member_starts, dpos) - 1
        if i < 0:
            return f"0+{dpos}"
        start, coff = self.members[i]
        if i > 0:  # forget members before this one: offsets only move forward
            del self.members[:i]
            del self._member_starts[:i]
        return str(coff) if start == dpos else f"{coff}+{dpos - start}"

    def peekline(self, limit: int = CHUNK) -> bytes:
        """The next line (with its newline) without consuming it; at most `limit` bytes."""
        while True:
            i = self.buf.find(b"\n", self.start, self.start + limit)
            if i >= 0:
                return bytes(self.buf[self.start: i + 1])
            if len(self.buf) - self.start >= limit or not self._fill():
                return bytes(self.buf[self.start: self.start + limit])

    def readline(self, limit: int = CHUNK) -> bytes:
        line = self.peekline(limit)
        self.start += len(line)
        self._compact()
        return line

    def window(self, n: int) -> tuple[bytearray, int, int]:
        """The buffer and the range [lo, hi) of the at most n bytes already buffered at the read
        position, for a caller to search in place (nothing is read or consumed; valid until the next
        call that reads or consumes)."""
        return self.buf, self.start, min(len(self.buf), self.start + n)

    def advance(self, n: int) -> None:
        """Consume n bytes of those `window` showed."""
        self.start += n
        self._compact()

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.start < n and self._fill():
            pass
        out = bytes(self.buf[self.start: self.start + n])
        self.start += len(out)
        self._compact()
        return out

    def skip(self, n: int) -> int:
        """Discard n bytes without keeping them; returns how many were there."""
        done = 0
        while done < n:
            avail = len(self.buf) - self.start
            if avail == 0:
                if not self._fill():
                    break
                continue
            take = min(avail, n - done)
            self.start += take
            done += take
            if self.start == len(self.buf):
                self.base += self.start
                self.buf.clear()
                self.start = 0
        self._compact()
        return done

    # ------------------------------------------------------------ looking ahead, going back
    def ensure(self, n: int) -> int:
        """Buffer up to n bytes after the read position without consuming them; how many there are
        (fewer only where the input ends)."""
        while len(self.buf) - self.start < n and self._fill():
            pass
        return min(n, len(self.buf) - self.start)

    def peek_at(self, delta: int, n: int) -> bytes:
        """Up to n bytes starting `delta` bytes after the read position, nothing consumed."""
        self.ensure(delta + n)
        i = self.start + delta
        return bytes(self.buf[i: i + n])

    def is_member_start(self, dpos: int) -> bool:
        """Does a gzip member start at this decoded position (among the members not yet forgotten)?"""
        if not self.gz:
            return False
        i = bisect.bisect_left(self._member_starts, dpos)
        return i < len(self._member_starts) and self._member_starts[i] == dpos

    def member_starts_in(self, lo: int, hi: int) -> list[int]:
        """Decoded positions p with lo < p <= hi where a gzip member starts (of those decoded so far)."""
        if not self.gz:
            return []
        i = bisect.bisect_right(self._member_starts, lo)
        j = bisect.bisect_right(self._member_starts, hi)
        return self._member_starts[i:j]

    def _drop_buffer(self) -> None:
        self.base += len(self.buf)
        self.buf.clear()
        self.start = 0

    def skip_to_member_after(self, dpos: int) -> bool:
        """Discard bytes up to the start of the first gzip member after decoded position `dpos`;
        False when the input ends first. Memory stays bounded: the skipped bytes are not kept."""
        while True:
            i = bisect.bisect_right(self._member_starts, max(dpos, self.pos - 1))
            if i < len(self._member_starts):
                self.skip(self._member_starts[i] - self.pos)
                return True
            self._drop_buffer()
            if not self._fill():
                return False

    def skip_in_member(self, n: int) -> int:
        """Like `skip`, but stop early at the start of the next gzip member; returns bytes skipped."""
        origin = self.pos
        done = 0
        while done < n:
            nxt = self.member_starts_in(origin, self.pos + n - done)
            if nxt:  # every buffered byte's member is known: nothing is skipped past a boundary
                done += self.skip(nxt[0] - self.pos)
                break
            avail = len(self.buf) - self.start
            if avail == 0:
                if not self._fill():
                    break
                continue
            done += self.skip(min(avail, n - done))
        return done

    def seek(self, dpos: int) -> bool:
        """Go back (or on) to a decoded position: inside the buffer for free, else by seeking the file
        (a gzip member is decoded again from its start). False when the file cannot seek."""
        if self.base <= dpos <= self.base + len(self.buf):
            self.start = dpos - self.base
            return True
        if not self.gz:
            if not self._seek_raw(dpos):
                return False
            self.cpos = self.produced = dpos
            self._reset(dpos)
            return True
        i = bisect.bisect_right(self._member_starts, dpos) - 1
        if i < 0:
            return False
        mstart, coff = self.members[i]
        if not self._seek_raw(coff):
            return False
        self.member_count -= len(self.members) - i
        del self.members[i:]
        del self._member_starts[i:]
        self.cpos, self.produced = coff, mstart
        self.in_member, self.dec = False, None
        self._reset(mstart)
        return self.skip(dpos - mstart) == dpos - mstart

    def _seek_raw(self, off: int) -> bool:
        try:
            if not self.raw.seekable():
                return False
            self.raw.seek(off)
            return True
        except StorageError:
            raise
        except Exception:  # noqa: BLE001 - a stream that cannot seek is scanned forward instead
            return False

    def _reset(self, base: int) -> None:
        self.buf = bytearray()
        self.base, self.start = base, 0
        self.pending = b""
        self.eof, self.error = False, None

    def scan_to(self, start_re: re.Pattern, line_start: bool = True) -> bool:
        """Advance to the next line start where `start_re` matches (a record start); False, with
        everything consumed, when the input ends first. Reads in bounded chunks."""
        find = _line_start_search(start_re)
        while True:
            self.ensure(2 * SCAN_OVERLAP)
            end = len(self.buf)
            final = end - self.start < 2 * SCAN_OVERLAP  # the input ended
            if line_start and start_re.match(self.buf, self.start):
                return True
            m = find.search(self.buf, self.start)
            if m and (final or m.start() + 1 + SCAN_OVERLAP <= end):
                self.start = m.start() + 1
                self._compact()
                return True
            if final:
                self._drop_buffer()
                return False
            cut = end - SCAN_OVERLAP
            nl = self.buf.rfind(b"\n", self.start, cut)
            if nl >= 0:
                self.start, line_start = nl + 1, True
            else:
                self.start, line_start = cut, False
            self._compact()


#: Bytes kept between scan chunks, more than a record start needs to be recognised.
SCAN_OVERLAP = 1024


@functools.lru_cache(maxsize=8)
def _line_start_search(start_re: re.Pattern) -> re.Pattern:
    return re.compile(b"\n(?=" + start_re.pattern + b")", start_re.flags)

"""Splitting a plain JSONL file into line-aligned byte ranges, and reading one range back.

The split is a scan much cheaper than parsing: the file is read in large chunks, newlines are
found with numpy, and only lines whose first byte is whitespace (the candidates for a blank line,
which emits no row) are looked at more closely. A range records the lines before it (for the
`name:lineno` source) and the rows the reader emits before it (blank lines emit none), so a range
gives exactly the rows, ids and sources the unsplit read gives for its lines.
"""
from __future__ import annotations

import numpy as np

from engine.reader import ShardRange

#: Bytes read per scan step.
SCAN_CHUNK = 8 << 20
#: The bytes `bytes.strip()` removes: a line of only these is blank (no record).
_WHITESPACE = b" \t\n\r\x0b\x0c"
_WS_TABLE = np.zeros(256, dtype=bool)
_WS_TABLE[list(_WHITESPACE)] = True


def line_ranges(f, target_bytes: int, max_bytes: int) -> list[ShardRange] | None:
    """Ranges of about `target_bytes` starting at line starts of the open plain file `f` (each
    range begins at the first line start at least `target_bytes` after the previous one); None
    when the file fits one range. `max_bytes` is the reader's line limit: a whitespace line longer
    than it is a `too_large` record, not a blank line."""
    target = max(1, int(target_bytes))
    cuts: list[tuple[int, int, int]] = []  # (start offset, lines before it, blank lines before it)
    deferred: list[int] = []  # whitespace-led lines running past their chunk: looked at after the scan
    next_cut = target
    pos = 0  # offset of the chunk's first byte
    lines = 0  # newlines before the chunk
    blanks = 0  # blank lines that start before the chunk (deferred ones aside)
    at_line_start = True  # does a line start at `pos`?
    f.seek(0)
    while True:
        data = f.read(SCAN_CHUNK)
        if not data:
            break
        arr = np.frombuffer(data, dtype=np.uint8)
        nls = np.flatnonzero(arr == 10)
        starts = nls + 1
        starts = starts[starts < len(data)]
        if at_line_start:
            starts = np.concatenate([[0], starts])
        cand = starts[_WS_TABLE[arr[starts]]]
        blank = cand[arr[cand] == 10]  # an empty line
        other = cand[arr[cand] != 10]
        if len(other):
            ends = np.searchsorted(nls, other)
            more = []
            for s, e in zip(other.tolist(), ends.tolist()):
                if e >= len(nls):
                    deferred.append(pos + s)
                elif nls[e] - s <= max_bytes and not data[s:nls[e]].strip(_WHITESPACE):
                    more.append(s)
            blank = np.sort(np.concatenate([blank, np.asarray(more, dtype=blank.dtype)]))
        while len(nls):
            i = int(np.searchsorted(nls, next_cut - 1 - pos))
            if i >= len(nls):
                break
            start = int(nls[i]) + 1
            cuts.append((pos + start, lines + i + 1, blanks + int(np.searchsorted(blank, start))))
            next_cut = pos + start + target
        lines += len(nls)
        blanks += len(blank)
        at_line_start = data[-1:] == b"\n"
        pos += len(data)
    cuts = [c for c in cuts if c[0] < pos]
    if not cuts:
        return None
    late = [d for d in deferred if d < cuts[-1][0] and _is_blank(f, d, max_bytes)]
    bounds = [(0, 0, 0)] + cuts
    ranges = []
    for k, (start, lines_before, blank_before) in enumerate(bounds):
        end = bounds[k + 1][0] if k + 1 < len(bounds) else -1
        blank_before += sum(1 for d in late if d < start)
        ranges.append(ShardRange(start=start, end=end, first_ordinal=lines_before - blank_before,
                                 first_record=lines_before))
    return ranges


def _is_blank(f, offset: int, max_bytes: int) -> bool:
    """Is the line starting at `offset` only whitespace, and short enough to be read as a line?"""
    f.seek(offset)
    length = 0
    while True:
        piece = f.read(1 << 20)
        if not piece:
            return length <= max_bytes
        nl = piece.find(b"\n")
        body = piece if nl < 0 else piece[:nl]
        if body.strip(_WHITESPACE):
            return False
        length += len(body)
        if length > max_bytes:
            return False
        if nl >= 0:
            return True


class RangeFile:
    """The bytes [start, end) of an open file as a file of their own (end -1: to the end)."""

    def __init__(self, f, start: int, end: int) -> None:
        self.f = f
        f.seek(start)
        self.left = None if end < 0 else end - start

    def read(self, n: int = -1) -> bytes:
        if self.left is None:
            return self.f.read(n)
        if n < 0 or n > self.left:
            n = self.left
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        return data

    def seekable(self) -> bool:
        return False

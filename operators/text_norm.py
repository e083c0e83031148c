"""Text normalisation shared by line dedup (and any operator that needs CCNet-style keys).

The dedup key for a line: lowercase, digits -> 0, accents stripped (Unicode NFD then the combining
marks dropped), punctuation removed, whitespace collapsed. This is CCNet's `normalize_for_dedup`
(lowercase, digits -> 0, punctuation and non-printing characters removed) plus accent stripping, as
our line-dedup contract asks: it removes somewhat more lines than CCNet ("Héllo" and "hello" match). We drop every character of a
Unicode punctuation (P*) or symbol (S*) category, combining marks (Mn, Me) and non-printing
characters (Cc/Cf/Co/Cs/Cn other than whitespace); every Unicode decimal digit (Nd) becomes "0".

One `str.translate` call does all of that for a whole text; the table is a dict filled lazily per
code point, so each distinct character is classified once per process. `normalize_lines_batch`
does the same for a whole batch of texts at once, through a numpy copy of the table.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np


class _NormTable(dict):
    """code point -> replacement (None deletes); filled on first sight of each character."""

    def __missing__(self, cp: int):
        ch = chr(cp)
        if ch == "\n":
            v = "\n"
        elif ch.isspace():
            v = " "
        else:
            cat = unicodedata.category(ch)
            if cat == "Nd":
                v = "0"
            elif cat[0] in "PS" or cat in ("Mn", "Me", "Cc", "Cf", "Co", "Cs", "Cn"):
                v = None
            else:
                v = ch
        self[cp] = v
        return v


_TABLE = _NormTable()
# Line separators other than "\n" must not create lines: the caller splits on "\n" only.
for _c in ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
    _TABLE[ord(_c)] = " "


def _ascii_tables() -> tuple[bytes, bytes]:
    table = bytearray(range(256))
    delete = bytearray()
    for c in range(128):
        v = _TABLE[c]
        if v is None:
            delete.append(c)
        else:
            table[c] = ord(v)
    return bytes(table), bytes(delete)


_BYTES_TABLE, _BYTES_DELETE = _ascii_tables()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _fix_run(m: re.Match) -> str:
    return unicodedata.normalize("NFD", m.group()).translate(_TABLE)


def normalize_text_slow(text: str) -> str:
    """Reference definition (one str.translate over the NFD text); `normalize_text` is equal to it."""
    t = text.lower()
    if not t.isascii():
        t = unicodedata.normalize("NFD", t)
    return t.translate(_TABLE)


def normalize_text(text: str) -> str:
    """The whole text normalised; "\\n" is kept so lines stay aligned with `text.split("\\n")`.

    Mostly-ASCII text: the ASCII bytes go through one `bytes.translate` (C speed) and only runs of
    non-ASCII characters are decomposed and mapped through the Unicode table; other text takes
    one NFD + `str.translate` pass. ASCII characters have combining class 0, so
    decomposing runs separately gives the same result as decomposing the whole text.
    """
    t = text.lower()
    if t.isascii():
        return t.translate(_TABLE)
    b = t.encode("utf-8", "surrogatepass")
    if len(b) - len(t) > len(t) // 16:                  # mostly non-ASCII script: one pass is best
        return unicodedata.normalize("NFD", t).translate(_TABLE)
    t = b.translate(_BYTES_TABLE, _BYTES_DELETE).decode("utf-8", "surrogatepass")
    return _NON_ASCII.sub(_fix_run, t)


def normalize_lines(text: str) -> list[str]:
    """One normalised string per line of `text.split("\\n")` (same count, same order)."""
    return [" ".join(line.split()) for line in normalize_text(text).split("\n")]


def normalize_line(line: str) -> str:
    return " ".join(normalize_text(line).replace("\n", " ").split())


class CodePointTable:
    """A `str.translate` table (code point -> a character, a code point, None to delete, or a longer
    string) as a uint32 array over every code point, so that a whole batch of text is mapped by one
    numpy gather; filled as the dict table is, on first sight of each code point. A longer string
    maps to the code point itself (the caller replaces those afterwards); the code points of `keep`
    map to themselves whatever the table says."""

    DELETED = np.uint32(0xFFFFFFFF)
    _UNSEEN = np.uint32(0xFFFFFFFE)

    def __init__(self, table, keep: tuple[int, ...] = ()) -> None:
        self.table, self.keep = table, keep
        self.codes: np.ndarray | None = None  # 4.4 MB: made on the first gather

    def gather(self, cp: np.ndarray) -> np.ndarray:
        """The mapped code points, DELETED where the table deletes."""
        if self.codes is None:
            self.codes = np.full(0x110000, self._UNSEEN, dtype=np.uint32)
            self.codes[list(self.keep)] = list(self.keep)
        out = self.codes[cp]
        unseen = out == self._UNSEEN
        if unseen.any():
            for c in np.unique(cp[unseen]).tolist():
                v = self.table[c]
                if isinstance(v, str):
                    v = ord(v) if len(v) == 1 else c
                self.codes[c] = self.DELETED if v is None else v
            out = self.codes[cp]
        return out


_CODES = CodePointTable(_TABLE)
_SPACE, _NEWLINE = 32, 10


def _mapped(cp: np.ndarray) -> np.ndarray:
    """`_TABLE` applied to code points (every value of the table is one character or None)."""
    out = _CODES.gather(cp)
    return out[out != CodePointTable.DELETED]


def _collapse_spaces(m: np.ndarray) -> np.ndarray:
    """Each "\\n"-separated line of the code points stripped of spaces and its runs of spaces made one
    (`" ".join(line.split())` once `_TABLE` has made every whitespace but "\\n" a space): first the
    spaces after a space, a line start or the text start go, then the (single) spaces before a line
    end or the text end."""
    sp = m == _SPACE
    if not sp.any():
        return m
    sp[1:] &= sp[:-1] | (m[:-1] == _NEWLINE)
    m = m[~sp]
    sp = m == _SPACE
    sp[:-1] &= m[1:] == _NEWLINE
    return m[~sp]


def normalize_lines_batch(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """`normalize_lines` of every text, done once over the whole batch: (the lines of all the texts in
    order, the number of lines of each text).

    The texts are joined with "\\n", lowercased and decomposed as one string: "\\n" is neither cased
    nor case-ignorable (a final sigma is decided the same at the end of a text) and a starter that
    NFD reordering does not cross; then the table is applied to the code points in numpy and the
    spaces of each line collapsed there."""
    if not texts:
        return [], np.zeros(0, dtype=np.int64)
    counts = np.fromiter((t.count("\n") + 1 for t in texts), dtype=np.int64, count=len(texts))
    joined = "\n".join(texts).lower()
    if joined.isascii():
        cp = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        out = _collapse_spaces(_mapped(cp).astype(np.uint8)).tobytes().decode("ascii")
    else:
        joined = unicodedata.normalize("NFD", joined)
        cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        out = _collapse_spaces(_mapped(cp)).tobytes().decode("utf-32-le", "surrogatepass")
    return out.split("\n"), counts

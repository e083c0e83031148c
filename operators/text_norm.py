"""Text normalisation shared by line dedup (and any operator that needs CCNet-style keys).

The dedup key for a line: lowercase, digits -> 0, accents stripped (Unicode NFD then the combining
marks dropped), punctuation removed, whitespace collapsed. This is CCNet's `normalize_for_dedup`
(lowercase, digits -> 0, punctuation and non-printing characters removed) plus accent stripping, as
our line-dedup contract asks: it removes somewhat more lines than CCNet ("Héllo" and "hello" match). We drop every character of a
Unicode punctuation (P*) or symbol (S*) category, combining marks (Mn, Me) and non-printing
characters (Cc/Cf/Co/Cs/Cn other than whitespace); every Unicode decimal digit (Nd) becomes "0".

One `str.translate` call does all of that for a whole text; the table is a dict filled lazily per
code point, so each distinct character is classified once per process.
"""
from __future__ import annotations

import re
import unicodedata



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


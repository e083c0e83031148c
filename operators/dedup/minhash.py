"""MinHash signatures and LSH band keys for a whole batch at once, in numpy (pure functions).

Pipeline for a batch of texts:

1. normalise the whole batch as ONE UTF-8 buffer (lowercase, punctuation removed, ASCII digits
   folded to 0, whitespace collapsed: what str.lower and a regex give; see `tokenize_utf8`: a
   byte table for ASCII, a code-point table applied in place on the UTF-8 bytes for the rest);
   documents are joined with a sentinel word so boundaries survive;
2. split into words and hash every word once with XXH3-64: numpy finds the word boundaries in
   the normalised bytes and a vectorised, bit-exact numpy implementation of XXH3's short-input
   path hashes all words of 1-16 bytes at once (no Python object per word); longer words go
   through the xxhash library;
3. word n-gram shingles (default n=5; a document shorter than n words is one shingle of all its
   words): the n word hashes of a shingle are combined with a polynomial over uint64 (odd base,
   wrapping arithmetic) and finalised with the murmur3 fmix64 mixer -- a 64-bit hash of the
   shingle's word sequence computed for all shingles of all documents in a few numpy passes;
4. permutations by multiply-shift universal hashing (Dietzfelbinger et al.): for the 64-bit
   shingle hash x, h_i(x) = (a_i * x mod 2^64) >> 32 with a random odd 64-bit a_i (one uint64
   multiply per element; an added b_i cost a third more time and did not change the estimate
   quality, measured against datasketch in tests/operators/dedup/test_minhash.py). It is
   applied to the concatenated shingles of all documents one permutation at a time, and the
   per-document minimum is `np.minimum.reduceat` at the documents' starts. The shingle axis is
   processed in cache-sized blocks (bounded memory whatever the document sizes; a document
   spanning blocks is merged with min).

Signatures are uint32 (num_perm per document), like datasketch's 32-bit values. Documents
without any word get an all-0xFFFFFFFF signature and `valid=False`; they never join a bucket.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from engine.hashing import fmix64
from operators.dedup.ranges import concat_ranges

EMPTY = np.uint32(0xFFFFFFFF)
_SENTINEL = "\x02"  # survives normalisation as its own word: marks the start of every document
# Normalisation: lowercase; every character that is not a word character (Unicode \w: letters
# and digits of every script, and "_") becomes a space, so punctuation goes and all whitespace
# collapses; ASCII digits fold to "0" (digits of other scripts are kept as they are).
_NONASCII_NONWORD = re.compile(r"[^\w\x00-\x7f]+")
_ASCII_TABLE = bytes(
    (c + 32 if 65 <= c <= 90 else 48 if 48 <= c <= 57
     else c if (97 <= c <= 122 or c == 95 or c == 2 or c >= 128) else 32)
    for c in range(256)
)
_ASCII_TABLE_3 = _ASCII_TABLE[:3] + b"\x03" + _ASCII_TABLE[4:]  # keeps the \x03 marker of tokenize
# polynomial base (odd, 64-bit) for combining word hashes into a shingle hash
_BASE = np.uint64(0x9E3779B97F4A7C15)


def _split(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the runs of non-space bytes."""
    edge = np.empty(len(arr) + 2, dtype=np.int8)
    edge[0] = edge[-1] = 1
    np.equal(arr, 32, out=edge[1:-1].view(bool))
    d = np.diff(edge)
    starts = np.flatnonzero(d == -1)
    return starts, np.flatnonzero(d == 1) - starts


def tokenize(text: str) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Normalised words of `text` without a Python object per word.

    Returns (buffers, buf, starts, lens): word i is buffers[buf[i]][starts[i]:starts[i]+lens[i]].
    """
    return tokenize_utf8(text.encode("utf-8", "surrogatepass"), text.isascii())


def tokenize_utf8(raw: bytes, ascii_only: bool = False) -> tuple[list[bytes | np.ndarray], np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """`tokenize` of UTF-8 bytes (what an Arrow string column holds, no decoding needed). A buffer
    is bytes, or a uint8 array with 16 zero bytes past its words (what `hash_words` reads as is).

    ASCII is normalised on bytes (`bytes.translate`: lowercase, non-word -> space, digit -> 0).
    Non-ASCII characters are normalised in place on the UTF-8 bytes by a table over the Basic
    Multilingual Plane (`_bmp_normal`: each code point's lowercase, or spaces for a non-word
    character, whenever that keeps the character's UTF-8 length), numpy decoding and re-encoding
    only the non-ASCII characters. The few words holding a character the table cannot map (Σ,
    whose lowercase depends on its word; İ and the other characters whose lowercase has another
    length; astral characters) get `str.lower` plus the regex for non-ASCII non-word characters
    as whole words, and are spliced back in place. Every step works inside one space-delimited
    word (a space is neither cased nor case-ignorable, so not even Σ looks across it): the words
    are those of normalising the whole decoded text, and a document's words do not depend on the
    documents batched with it.
    """
    nb = raw.translate(_ASCII_TABLE)
    arr = np.frombuffer(nb, dtype=np.uint8)
    mapped = arr if ascii_only else _map_non_ascii(nb)
    if mapped is None:  # not well-formed UTF-8 as numpy reads it: the codec decodes it all (or raises)
        fixed = _normalize_non_ascii(nb.decode("utf-8", "surrogatepass").lower()).translate(_ASCII_TABLE)
        st, ln = _split(np.frombuffer(fixed, dtype=np.uint8))
        return [fixed], np.zeros(len(st), np.int8), st, ln
    if isinstance(mapped, np.ndarray):  # all ASCII
        starts, lens = _split(arr)
        return [nb], np.zeros(len(starts), np.int8), starts, lens
    out, ws, we = mapped
    starts, lens = _split(out[:len(nb)])
    if len(ws) == 0:
        return [out], np.zeros(len(starts), np.int8), starts, lens
    return _splice_words(nb, out, starts, lens, ws, we)


def _splice_words(orig: bytes, nb: np.ndarray, starts: np.ndarray, lens: np.ndarray, ws: np.ndarray,
                  we: np.ndarray) -> tuple[list[bytes | np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The words (starts, lens) of `nb` with its k-th \\x03 marker word replaced by the words
    orig[ws[k]:we[k]] normalises to (str.lower, the regex, the ASCII table), in place."""
    arr = np.frombuffer(nb, dtype=np.uint8)
    flagged = np.flatnonzero((lens == 1) & (arr[starts] == 3))
    assert len(flagged) == len(ws)
    fixed = b" \x03 ".join(_normalize_words(orig, ws, we))
    farr = np.frombuffer(fixed, dtype=np.uint8)
    s2, l2 = _split(farr)
    marker = (l2 == 1) & (farr[s2] == 3)
    # sub-words of flagged word k lie between marker k-1 and marker k
    mpos = np.flatnonzero(marker)
    nsub = np.diff(np.concatenate([[-1], mpos, [len(s2)]])) - 1
    s2, l2 = s2[~marker], l2[~marker]
    counts = np.ones(len(starts), dtype=np.int64)
    counts[flagged] = nsub
    src = np.repeat(np.arange(len(starts)), counts)  # output word -> input word
    st, ln = starts[src], lens[src]
    buf = np.zeros(len(src), np.int8)
    out_start = np.cumsum(counts) - counts
    pos = concat_ranges(out_start[flagged], out_start[flagged] + nsub)
    buf[pos] = 1
    st[pos] = s2
    ln[pos] = l2
    return [nb, fixed], buf, st, ln


def _map_non_ascii(nb: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray | None:
    """The non-ASCII characters of ASCII-normalised UTF-8 bytes normalised by `_bmp_normal`.

    Returns `arr` itself when it has no non-ASCII byte; None when its bytes are not well-formed
    UTF-8 sequences; else (a new uint8 array, 16 zero bytes longer, starts, ends): the words of arr
    holding a character the table does not map and whose normalisation is longer, [start, end)
    each, are one \\x03 (never in translated text) and spaces in the new array."""
    arr = np.frombuffer(nb, dtype=np.uint8)
    n_high = int(np.count_nonzero(arr >= 0x80))
    if n_high == 0:
        return arr
    lead = np.flatnonzero(arr >= 0xC0)
    b0 = arr[lead]
    n_cont = (b0 >= 0xE0).view(np.int8) + (b0 >= 0xF0).view(np.int8) + 1  # continuation bytes: 1-3
    if len(lead) + int(n_cont.sum(dtype=np.int64)) != n_high or int(lead[-1]) + int(n_cont[-1]) >= len(arr):
        return None
    padded = np.concatenate([arr, np.zeros(16, np.uint8)])  # becomes the output: hash_words reads it as is
    b1, b2, b3 = padded[lead + 1], padded[lead + 2], padded[lead + 3]
    # with the count above, continuation bytes wherever each lead says: well-formed sequences
    if not (((b1 & 0xC0) == 0x80).all() and (((b2 & 0xC0) == 0x80) | (n_cont < 2)).all()
            and (((b3 & 0xC0) == 0x80) | (n_cont < 3)).all()):
        return None
    x1 = (b1 & 0x3F).astype(np.uint32)
    v2 = ((b0 & 0x1F).astype(np.uint32) << 6) | x1
    v3 = ((b0 & 0x0F).astype(np.uint32) << 12) | (x1 << 6) | (b2 & 0x3F)
    # astral characters (and an overlong 3-byte form, for the codec to judge) are 0: not mapped
    cp = np.where(n_cont == 1, v2, np.where((n_cont == 2) & (v3 >= 0x800), v3, 0))
    new = _bmp_normal()[cp]
    out = padded
    changed = np.flatnonzero(new != cp)  # lowercased or non-word (0 and unmapped: see below)
    p, v, size = lead[changed], new[changed], n_cont[changed] + 1
    for k in (2, 3):  # a lowercase of the same length
        sel = (size == k) & (v >= 0x80)
        q, w = p[sel], v[sel]
        out[q] = ((0xC0 if k == 2 else 0xE0) | (w >> (6 * (k - 1)))).astype(np.uint8)
        for j in range(1, k):
            out[q + j] = (0x80 | ((w >> (6 * (k - 1 - j))) & 0x3F)).astype(np.uint8)
    q, n = p[v == 32], size[v == 32]  # a non-word character: spaces
    for j in range(4):
        out[q[n > j] + j] = 32
    bad = lead[new == 0]
    if len(bad) == 0:
        return out, np.zeros(0, np.int64), np.zeros(0, np.int64)
    ws, we = _words_around(nb, arr, bad)
    slots = (we - ws).tolist()
    pieces = _normalize_words(nb, ws, we)
    if all(len(x) <= n for x, n in zip(pieces, slots)):  # written in place, padded with spaces
        out[concat_ranges(ws, we)] = np.frombuffer(b"".join(x.ljust(n) for x, n in zip(pieces, slots)), np.uint8)
        return out, np.zeros(0, np.int64), np.zeros(0, np.int64)
    out[concat_ranges(ws, we)] = 32  # a word grew (Ⱥ -> ⱥ is 2 bytes -> 3): spliced in after the split
    out[ws] = 3
    return out, ws, we


def _normalize_words(data: bytes, ws: np.ndarray, we: np.ndarray) -> list[bytes]:
    """The normalisation of each word data[ws[k]:we[k]] of ASCII-normalised UTF-8: str.lower, the
    regex for non-ASCII non-word characters, the ASCII table; all words in one pass, split apart
    at a marker."""
    chunk = b" \x03 ".join([data[x:y] for x, y in zip(ws.tolist(), we.tolist())]).decode("utf-8", "surrogatepass")
    fixed = _NONASCII_NONWORD.sub(" ", chunk.lower()).encode("utf-8", "surrogatepass").translate(_ASCII_TABLE_3)
    return fixed.split(b" \x03 ")


def _words_around(data: bytes, arr: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the space-delimited words of `data` (`arr`: its bytes as numpy) holding
    the positions `pos` (ascending), each word once. Few positions: a search from each; many: from
    all the spaces."""
    if len(pos) * 64 < len(arr):
        ws, we = [], []
        for x in pos.tolist():
            if we and x < we[-1]:
                continue
            ws.append(data.rfind(b" ", 0, x) + 1)
            e = data.find(b" ", x)
            we.append(len(data) if e < 0 else e)
        return np.array(ws, np.int64), np.array(we, np.int64)
    sp = np.concatenate([[-1], np.flatnonzero(arr == 32), [len(arr)]])
    ws = np.unique(sp[np.searchsorted(sp, pos) - 1] + 1)
    return ws, sp[np.searchsorted(sp, ws)]


@lru_cache(maxsize=1)
def _bmp_normal() -> np.ndarray:
    """What normalisation makes of each non-ASCII BMP code point when that is one code point of
    the same UTF-8 length: its lowercase, or 32 (spaces) when that is not a word character (\\w);
    0 where it is not (Σ, whose lowercase depends on its word; İ and the others whose lowercase is
    longer, shorter or two characters; surrogates) and below 0x80. Built in ~10 ms (by one
    str.lower of all the code points: without Σ and İ, the only context and the only two-character
    lowercase of the BMP, it maps character by character)."""
    cps = np.arange(0x80, 0x10000)
    cps = cps[((cps < 0xD800) | (cps >= 0xE000)) & (cps != 0x3A3) & (cps != 0x130)]
    chars = _as_str(cps)
    low = chars.lower()
    if len(low) == len(chars):
        lo = np.frombuffer(low.encode("utf-32-le"), dtype=np.uint32)
    else:  # a Unicode version with another multi-character lowercase: character by character
        lo = np.array([ord(x) if len(x) == 1 else 0 for x in (chr(c).lower() for c in cps.tolist())], np.uint32)
    same_length = (lo >= 0x80) & ((lo >= 0x800) == (cps >= 0x800))
    # \w of each lowercase, by one regex pass over them all (each a single code point here)
    word = _word_char(_as_str(np.where(same_length, lo, 0x61)))
    t = np.zeros(0x10000, dtype=np.uint32)
    t[cps[same_length]] = np.where(word, lo, 32)[same_length]
    t.flags.writeable = False
    return t


_NON_WORD_CHAR = re.compile(r"\W")


def _as_str(cps: np.ndarray) -> str:
    """The code points as one string (lone surrogates allowed), without a Python call each."""
    return cps.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def _word_char(chars: str) -> np.ndarray:
    """Whether each character of `chars` is a regex word character (\\w), by one regex pass (NUL
    is not one)."""
    return np.frombuffer(_NON_WORD_CHAR.sub("\x00", chars).encode("utf-32-le", "surrogatepass"),
                         dtype=np.uint32) != 0


@lru_cache(maxsize=1)
def _bmp_word_chars() -> np.ndarray:
    """Whether each Basic Multilingual Plane code point is a regex word character (\\w). Built
    in a few ms: every worker builds it at its first document."""
    return _word_char(_as_str(np.arange(0x10000)))


def _normalize_non_ascii(text: str) -> bytes:
    """UTF-8 of `text` with every non-ASCII character that is not a word character (\\w) as a
    space: what `_NONASCII_NONWORD.sub(" ", text)` gives, word for word, as one numpy pass over
    the code points (the regex costs ~70 ns a character)."""
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    word = np.ones(len(cp), dtype=bool)
    bmp = cp < 0x10000
    word[bmp] = _bmp_word_chars()[cp[bmp]]
    astral = np.flatnonzero(~bmp)
    if len(astral):
        word[astral] = _word_char(_as_str(cp[astral]))
    cp[~word & (cp >= 128)] = 32
    return cp.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass")


def normalize(text: str) -> str:
    """The normalisation used for shingling, as a string of space-separated words."""
    bufs, buf, st, ln = tokenize(text.replace(_SENTINEL, " "))
    return b" ".join(bufs[b][x:x + n] for b, x, n in zip(buf.tolist(), st.tolist(), ln.tolist())).decode(
        "utf-8", "surrogatepass")


def _joined_column(col: pa.LargeStringArray) -> bytes:
    """ "<S> t " for every text t of the column, end to end: the data buffer of that joined column."""
    if len(col) == 0:
        return b""
    j = pc.binary_join_element_wise(pa.scalar(_SENTINEL, pa.large_string()), col,
                                    pa.scalar("", pa.large_string()), pa.scalar(" ", pa.large_string()))
    off = np.frombuffer(j.buffers()[1], dtype=np.int64, count=len(j) + 1, offset=8 * j.offset)
    return j.buffers()[2][int(off[0]):int(off[-1])].to_pybytes()


def _joined_utf8(texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> tuple[bytes, bool, int]:
    """(UTF-8 of "<S> t1 <S> t2 ...", whether it is all ASCII, number of texts), <S> the sentinel;
    a sentinel inside a text is a space, as in normalize()."""
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        col = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        col = col.cast(pa.large_string())
        if col.null_count:
            col = pc.fill_null(col, "")
        n = len(col)
        raw = _joined_column(col)
        if raw.count(_SENTINEL.encode()) != n:
            raw = _joined_column(pc.replace_substring(col, _SENTINEL, " "))
        return raw, raw.isascii(), n
    texts = list(texts)
    joined = _SENTINEL + " " + (" " + _SENTINEL + " ").join(texts)
    if joined.count(_SENTINEL) != len(texts):
        joined = _SENTINEL + " " + (" " + _SENTINEL + " ").join(t.replace(_SENTINEL, " ") for t in texts)
    return joined.encode("utf-8", "surrogatepass"), joined.isascii(), len(texts)


def word_hashes(texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """xxh3_64 of every normalised word of every text, concatenated; plus per-doc word offsets.

    `texts`: Python strings, or an Arrow string column (nulls are empty texts), whose UTF-8 bytes
    are used as they are (no Python string per document). Returns (hashes uint64 [W], offsets
    int64 [D+1]): words of doc d are hashes[offsets[d]:offsets[d+1]]. The batch is tokenised as
    one buffer, documents joined with a sentinel word.
    """
    joined, ascii_only, n = _joined_utf8(texts)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    bufs, buf, st, ln = tokenize_utf8(joined, ascii_only)
    if len(bufs) == 1:
        h = hash_words(bufs[0], st, ln)
    else:  # the few re-normalised non-ASCII words live in the second buffer
        sub = np.flatnonzero(buf == 1)
        st0, ln0 = st.copy(), ln.copy()
        st0[sub], ln0[sub] = 0, 1
        h = hash_words(bufs[0], st0, ln0)
        h[sub] = hash_words(bufs[1], st[sub], ln[sub])
    one = np.flatnonzero((ln == 1) & (buf == 0))
    sent = one[np.frombuffer(bufs[0], np.uint8)[st[one]] == 2]
    assert len(sent) == n
    # remove sentinels; doc d's words lie between sentinel d and sentinel d+1
    keep = np.ones(len(h), dtype=bool)
    keep[sent] = False
    counts = np.diff(np.append(sent, len(h))) - 1
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return h[keep], offsets


def split_hash(nb: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split bytes on spaces and xxh3_64 every word: (hashes, starts, lengths)."""
    starts, lens = _split(np.frombuffer(nb, dtype=np.uint8))
    return hash_words(nb, starts, lens), starts, lens


def hash_words(nb: bytes | np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """XXH3-64 (seed 0) of every word nb[s:s+n] (bytes, or a uint8 array with 16 zero bytes past
    its last word).

    Words of 1-16 bytes (nearly all) are hashed by `xxh3_64_short`, those of 17-128 bytes
    (long words of non-Latin scripts, runs of CJK text) by `xxh3_64_mid`: vectorised numpy
    implementations of XXH3-64, bit-exact with the xxhash library (tested); longer words go
    through `xxhash.xxh3_64_intdigest` one by one.
    """
    h = xxh3_64_short(nb, starts, lens)
    mid = np.flatnonzero((lens > 16) & (lens <= 128))
    if len(mid):
        h[mid] = xxh3_64_mid(nb, starts[mid], lens[mid])
    long_ = np.flatnonzero(lens > 128)
    if len(long_):
        h[long_] = np.fromiter((xxhash.xxh3_64_intdigest(nb[s:s + n]) for s, n in
                                zip(starts[long_].tolist(), lens[long_].tolist())), dtype=np.uint64, count=len(long_))
    return h


# XXH3's default secret, first 128 bytes (all that inputs of <= 128 bytes use)
_XXH3_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364")


def _s64(o: int) -> np.uint64:
    return np.uint64(int.from_bytes(_XXH3_SECRET[o:o + 8], "little"))


def _s32(o: int) -> int:
    return int.from_bytes(_XXH3_SECRET[o:o + 4], "little")


_BITFLIP_1_3 = np.uint64(_s32(0) ^ _s32(4))
_BITFLIP_4_8 = _s64(8) ^ _s64(16)
_BITFLIP_9_16_A = _s64(24) ^ _s64(32)
_BITFLIP_9_16_B = _s64(40) ^ _s64(48)
_U = np.uint64


def _padded(data: bytes | np.ndarray) -> np.ndarray:
    """The bytes as uint8 with 16 zero bytes after them (an array is taken to have them)."""
    return data if isinstance(data, np.ndarray) else np.frombuffer(data + b"\0" * 16, dtype=np.uint8)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << _U(r)) | (x >> _U(64 - r))


def _mul128_fold64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = _U(0xFFFFFFFF)
    al, ah, bl, bh = a & m, a >> _U(32), b & m, b >> _U(32)
    ll, hl, lh, hh = al * bl, ah * bl, al * bh, ah * bh
    cross = (ll >> _U(32)) + (hl & m) + lh
    upper = (hl >> _U(32)) + (cross >> _U(32)) + hh
    lower = (cross << _U(32)) | (ll & m)
    return lower ^ upper


def xxh3_64_short(data: bytes | np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """XXH3-64 (seed 0) of data[s:s+n] for every (s, n) with 1 <= n <= 16, vectorised.

    Entries with other lengths are left undefined (the caller fills them)."""
    buf = _padded(data)
    # unaligned little-endian 8- and 4-byte reads at every byte offset (views, no copy)
    w8 = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    w4 = np.ndarray((len(buf) - 3,), dtype="<u4", buffer=buf, strides=(1,))
    # group the words by length class (1-3: 1, 4-8: 2, 9-16: 3, longer: 4) with one stable sort, so each
    # class is a contiguous slice (cheaper than three boolean masks and scatters)
    cls = (lens >= 1).view(np.int8) + (lens >= 4).view(np.int8) + (lens >= 9).view(np.int8) + (lens >= 17).view(np.int8)
    order = np.argsort(cls, kind="stable")
    bounds = np.searchsorted(cls[order], np.arange(1, 5, dtype=np.int8))
    st_all, ln_all = starts[order], lens[order]
    hs = np.zeros(len(starts), dtype=np.uint64)
    with np.errstate(over="ignore"):
        lo, hi = bounds[0], bounds[1]
        if hi > lo:
            s, ln = st_all[lo:hi], ln_all[lo:hi]
            h = ((buf[s].astype(_U) << _U(16)) | (buf[s + (ln >> 1)].astype(_U) << _U(24))
                 | buf[s + ln - 1].astype(_U) | (ln.astype(_U) << _U(8)))
            h ^= _BITFLIP_1_3  # XXH64 avalanche
            h ^= h >> _U(33)
            h *= _U(0xC2B2AE3D27D4EB4F)
            h ^= h >> _U(29)
            h *= _U(0x165667B19E3779F9)
            h ^= h >> _U(32)
            hs[lo:hi] = h
        lo, hi = bounds[1], bounds[2]
        if hi > lo:
            s, ln = st_all[lo:hi], ln_all[lo:hi]
            h = (w4[s + ln - 4].astype(_U) + (w4[s].astype(_U) << _U(32))) ^ _BITFLIP_4_8
            h ^= _rotl(h, 49) ^ _rotl(h, 24)  # rrmxmx
            h *= _U(0x9FB21C651E98DF25)
            h ^= (h >> _U(35)) + ln.astype(_U)
            h *= _U(0x9FB21C651E98DF25)
            h ^= h >> _U(28)
            hs[lo:hi] = h
        lo, hi = bounds[2], bounds[3]
        if hi > lo:
            s, ln = st_all[lo:hi], ln_all[lo:hi]
            a = w8[s] ^ _BITFLIP_9_16_A
            b = w8[s + ln - 8] ^ _BITFLIP_9_16_B
            h = ln.astype(_U) + a.byteswap() + b + _mul128_fold64(a, b)
            h ^= h >> _U(37)  # XXH3 avalanche
            h *= _U(0x165667919E3779F9)
            h ^= h >> _U(32)
            hs[lo:hi] = h
    out = np.empty(len(starts), dtype=np.uint64)
    out[order] = hs
    return out


_PRIME64_1 = np.uint64(0x9E3779B185EBCA87)


def xxh3_64_mid(data: bytes | np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """XXH3-64 (seed 0) of data[s:s+n] for every (s, n) with 17 <= n <= 128, vectorised: the
    length times PRIME64_1 plus one 16-byte mix per pair of 16-byte lanes read from both ends
    (one pair up to 32 bytes, two up to 64, three up to 96, four up to 128), then XXH3's avalanche."""
    buf = _padded(data)
    w8 = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    s = starts.astype(np.int64)
    n = lens.astype(np.int64)

    def mix16(pos: np.ndarray, secret: int) -> np.ndarray:
        return _mul128_fold64(w8[pos] ^ _s64(secret), w8[pos + 8] ^ _s64(secret + 8))

    with np.errstate(over="ignore"):
        acc = n.astype(_U) * _PRIME64_1
        acc += mix16(s, 0) + mix16(s + n - 16, 16)
        for k, above in enumerate((32, 64, 96), start=1):
            sel = np.flatnonzero(n > above)
            if len(sel) == 0:
                break
            ss, nn = s[sel], n[sel]
            acc[sel] += mix16(ss + 16 * k, 32 * k) + mix16(ss + nn - 16 * (k + 1), 32 * k + 16)
        acc ^= acc >> _U(37)
        acc *= _U(0x165667919E3779F9)
        acc ^= acc >> _U(32)
    return acc


def shingle_hashes(wh: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the word n-grams of every document (vectorised over all documents).

    A document with fewer than `ngram` words (but at least one) has one shingle of all its words.
    Returns (hashes uint64 [S], shingle offsets int64 [D+1]).
    """
    nwords = np.diff(offsets)
    nsh = np.where(nwords >= ngram, nwords - ngram + 1, np.minimum(nwords, 1))
    soff = np.zeros(len(nwords) + 1, dtype=np.int64)
    np.cumsum(nsh, out=soff[1:])
    total = int(soff[-1])
    if total == 0:
        return np.zeros(0, np.uint64), soff
    doc = np.repeat(np.arange(len(nwords)), nsh)
    start = offsets[:-1][doc] + (np.arange(total) - soff[:-1][doc])  # first word of each shingle
    short = np.flatnonzero(nwords[doc] < ngram)  # the one shingle of a document shorter than n words
    h = np.empty(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if len(wh) >= ngram:  # every window of n words of the batch, by shifted slices (no gathers)
            win = np.full(len(wh) - ngram + 1, np.uint64(ngram), dtype=np.uint64)  # n seeds the polynomial
            for k in range(ngram):
                win *= _BASE
                win += wh[k:len(wh) - ngram + 1 + k]
            full = np.flatnonzero(nwords[doc] >= ngram) if len(short) else slice(None)
            h[full] = win[start[full]]
        if len(short):
            st, length = start[short], nwords[doc[short]]
            hs = np.full(len(short), np.uint64(ngram), dtype=np.uint64)
            for k in range(ngram):
                m = k < length
                nxt = hs * _BASE + wh[np.minimum(st + k, len(wh) - 1)]
                hs = np.where(m, nxt, hs)
            h[short] = hs
    return fmix64(h), soff


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int = 1) -> np.ndarray:
    """Random odd multipliers of the multiply-shift family, a uint64 column vector [num_perm, 1]."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    a.flags.writeable = False
    return a.reshape(-1, 1)


def _blocks(doc_starts: np.ndarray, total: int, chunk: int) -> list[int]:
    """Cut points of the shingle axis: blocks of at most `chunk` shingles, cut at a document's
    start unless one document alone is longer (then it is cut inside)."""
    cuts = [0]
    while cuts[-1] < total:
        s0 = cuts[-1]
        t = s0 + chunk
        if t >= total:
            cuts.append(total)
            break
        d = int(np.searchsorted(doc_starts, t, side="right")) - 1
        cuts.append(int(doc_starts[d]) if doc_starts[d] > s0 else t)
    return cuts


def minhash_from_shingles(sh: np.ndarray, soff: np.ndarray, num_perm: int, seed: int = 1,
                          chunk: int = 65536) -> np.ndarray:
    """Signatures [D, num_perm] uint32 from concatenated shingle hashes and their doc offsets.

    Per block of shingles (cache-sized: 64k shingles, 512 KB, hold a batch of 256 documents of
    ~1 KB in one block; blocks of 32k took ~7% longer on such batches) and per permutation: one
    contiguous uint64 multiply by the scalar a_i and one `np.minimum.reduceat` over the documents'
    starts; a 2-D broadcast of all permutations at once runs the multiply at a third of the speed.
    """
    ndoc = len(soff) - 1
    sig = np.full((ndoc, num_perm), EMPTY, dtype=np.uint32)
    total = len(sh)
    if total == 0:
        return sig
    a = [np.uint64(v) for v in permutations(num_perm, seed).ravel()]
    nonempty = np.flatnonzero(np.diff(soff) > 0)
    doc_starts = soff[:-1][nonempty]
    acc = np.empty((num_perm, len(nonempty)), dtype=np.uint64)  # per-document minima, by permutation
    tmp = np.empty(min(total, chunk), dtype=np.uint64)
    cuts = _blocks(doc_starts, total, chunk)
    with np.errstate(over="ignore"):
        for s0, s1 in zip(cuts[:-1], cuts[1:]):
            i0 = int(np.searchsorted(doc_starts, s0, side="right")) - 1  # documents i0 .. i1-1
            i1 = int(np.searchsorted(doc_starts, s1, side="left"))
            local = doc_starts[i0:i1] - s0
            continues = local[0] < 0  # the first document began in an earlier block
            local[0] = 0
            x, out = sh[s0:s1], tmp[:s1 - s0]
            for i in range(num_perm):
                np.multiply(x, a[i], out=out)
                if continues:
                    m = np.minimum.reduceat(out, local)
                    acc[i, i0] = min(acc[i, i0], m[0])
                    acc[i, i0 + 1:i1] = m[1:]
                else:
                    np.minimum.reduceat(out, local, out=acc[i, i0:i1])
    acc >>= np.uint64(32)
    sig[nonempty] = acc.T
    return sig


def minhash_signatures(texts: Sequence[str] | pa.Array | pa.ChunkedArray, num_perm: int = 112, ngram: int = 5,
                       seed: int = 1, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(signatures uint32 [D, num_perm], valid bool [D]) for a batch of texts."""
    wh, off = word_hashes(texts)
    sh, soff = shingle_hashes(wh, off, ngram)
    sig = minhash_from_shingles(sh, soff, num_perm, seed, chunk)
    return sig, np.diff(soff) > 0


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values (rows of two [N, P] arrays, or two [P] vectors)."""
    return np.mean(sig_a == sig_b, axis=-1)


# ---------------------------------------------------------------- LSH parameters and band keys

def _integrate(f, lo: float, hi: float, n: int = 200) -> float:
    if hi <= lo:
        return 0.0
    x = np.linspace(lo, hi, n + 1)
    y = f(x)
    return float(np.sum((y[1:] + y[:-1]) * 0.5 * np.diff(x)))


def false_positive_area(threshold: float, b: int, r: int) -> float:
    """Probability mass of becoming candidates below the threshold (integral of 1-(1-s^r)^b)."""
    return _integrate(lambda s: 1.0 - (1.0 - s ** r) ** b, 0.0, threshold)


def false_negative_area(threshold: float, b: int, r: int) -> float:
    """Probability mass of missing candidates above the threshold (integral of (1-s^r)^b)."""
    return _integrate(lambda s: (1.0 - s ** r) ** b, threshold, 1.0)


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5,
                  fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising weighted FP + FN areas: the areas of
    `false_positive_area` and `false_negative_area`, all bands of one row count at once (every
    worker runs this at start-up: pair by pair it took ~30 ms for 112 permutations)."""
    n = 200
    x_fp, x_fn = np.linspace(0.0, threshold, n + 1), np.linspace(threshold, 1.0, n + 1)
    best, best_err = (1, 1), float("inf")
    errs = {}
    for r in range(1, num_perm + 1):
        bands = np.arange(1, num_perm // r + 1)
        fp = _areas(lambda s: 1.0 - _powers(1.0 - s ** r, bands), x_fp) if threshold > 0.0 else 0.0
        fn = _areas(lambda s: _powers(1.0 - s ** r, bands), x_fn) if threshold < 1.0 else 0.0
        for b, e in zip(bands.tolist(), (fp_weight * fp + fn_weight * fn).tolist()):
            errs[(b, r)] = e
    for b in range(1, num_perm + 1):  # the order of the pairs decides ties, as it always did
        for r in range(1, num_perm // b + 1):
            if errs[(b, r)] < best_err - 1e-12:
                best, best_err = (b, r), errs[(b, r)]
    return best


def _powers(base: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """[len(exponents), len(base)]: base ** e for each e, as `base ** e` computes it."""
    out = np.power(base[None, :], exponents[:, None].astype(np.float64))
    for e in (1, 2):  # numpy's own shortcuts for these exponents (a copy, a square)
        if len(exponents) >= e:
            out[e - 1] = base ** e
    return out


def _areas(f, x: np.ndarray) -> np.ndarray:
    """Trapezoid integrals over x of each row of f(x), as `_integrate` sums them."""
    y = f(x)
    return np.sum((y[:, 1:] + y[:, :-1]) * 0.5 * np.diff(x), axis=1)


def band_keys(sig: np.ndarray, bands: int, rows: int, seed: int = 1) -> np.ndarray:
    """64-bit key of every (document, band): [D, bands] uint64, vectorised over documents.

    Each band's `rows` signature values are folded into a uint64 by a polynomial seeded with the
    band index and the seed, then avalanched with fmix64.
    """
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {sig.shape[1]}")
    s = sig[:, : bands * rows].astype(np.uint64).reshape(len(sig), bands, rows)
    h = np.empty((len(sig), bands), dtype=np.uint64)
    h[:] = (np.arange(bands, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000001B3))[None, :]
    fmix64(h)
    with np.errstate(over="ignore"):
        for j in range(rows):
            h *= _BASE
            h += s[:, :, j]
    return fmix64(h)

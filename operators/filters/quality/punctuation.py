"""Sentence-final punctuation of many scripts, as regexes shared by the C4 and FineWeb rules."""

#: Terminal punctuation: Latin, Armenian, Arabic, Syriac, N'Ko, Devanagari, Tibetan, Myanmar, Ethiopic,
#: Canadian syllabics, Khmer, Mongolian, CJK and fullwidth forms, and the ellipsis.
TERMINAL = ".!?\u0589\u061f\u06d4\u0700\u0701\u0702\u07f9\u0964\u0965\u0f0d\u0f0e\u104a\u104b\u1362\u1367\u1368" \
           "\u17d4\u17d5" \
           "\u166e\u1803\u1809\u203c\u203d\u2047\u2048\u2049\u2e2e\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7" \
           "\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\u2026"
TERMINAL_CLASS = "[" + "".join("\\" + c if c in ".!?" else c for c in TERMINAL) + "]"
#: Closing quotes and brackets that may follow the punctuation.
CLOSERS = "[\"'\u201d\u2019\u00bb)\\]]*"
#: A line (or text) that ends a sentence: FineWeb's line test, and C4's trailing-sentence test.
LINE_END_RE = TERMINAL_CLASS + CLOSERS + r"$"
#: CJK full stops: Chinese and Japanese put no space after them.
CJK_TERMINAL = "\u3002\uff01\uff1f\uff61"
#: A sentence ends at terminal punctuation followed by a space or the end, or at a CJK full stop.
SENTENCE_END_RE = "(?:" + TERMINAL_CLASS + "+" + CLOSERS + r"(?:\s|$)|[" + CJK_TERMINAL + "]+" + CLOSERS + ")"

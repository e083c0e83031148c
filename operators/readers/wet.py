"""WET reader: Common Crawl's extracted text (conversion records) -> `text` documents.

Same record machinery as the WARC reader, but a block runs to the next `WARC/x.y` line: CCNet's
WET layout counts characters in Content-Length, so byte framing would cut records in the middle.
"""
from __future__ import annotations

import re
from typing import ClassVar

from engine.reader import name_hint
from engine.registry import register

from .warc import WarcReader


_WARC_TYPE = re.compile(rb"^WARC-Type:[ \t]*([A-Za-z-]+)", re.M | re.I)


@register
class WetReader(WarcReader):
    """WET shards (also WAT: metadata only, so 0 documents with every record counted)."""

    name: ClassVar[str] = "wet"
    content_column: ClassVar[str] = "text"
    columns: ClassVar[tuple[str, ...]] = ()
    transient_columns: ClassVar[tuple[str, ...]] = ()
    suffixes: ClassVar[tuple[str, ...]] = (".wet", ".wet.txt")
    fallback: ClassVar[bool] = False
    #: A WET file is WARC too: when both say yes, WET wins.
    sniff_priority: ClassVar[int] = 1
    line_mode: ClassVar[bool] = True

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        """WARC framing with conversion records; with nothing but a warcinfo record in the head,
        the file's name decides."""
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"WARC/"):
            return False
        types = {t.lower() for t in _WARC_TYPE.findall(head)}
        if b"conversion" in types:
            return True
        return bool(types) and types <= {b"warcinfo"} and name_hint(path) == cls.name

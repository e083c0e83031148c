"""WET reader: Common Crawl's extracted text (conversion records) -> `text` documents.

Same record machinery as the WARC reader, but a block runs to the next `WARC/x.y` line: CCNet's
WET layout counts characters in Content-Length, so byte framing would cut records in the middle.
"""
from __future__ import annotations

from typing import ClassVar

from engine.operator import register

from .warc import WarcReader


@register
class WetReader(WarcReader):
    """WET shards (also WAT: metadata only, so 0 documents with every record counted)."""

    format: ClassVar[str] = "wet"
    content_column: ClassVar[str] = "text"
    line_mode: ClassVar[bool] = True

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        return head.lstrip().startswith(b"WARC/") and b"WARC-Type: conversion" in head

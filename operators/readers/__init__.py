"""Readers: one shard (WARC/ARC, WET, JSONL, Parquet) -> document batches, registered by format
name; `input.format: auto` asks each reader's `sniff` (engine.reader.detect_format)."""
from __future__ import annotations

from engine.reader import detect_format, open_reader

from .jsonl import JsonlReader
from .parquet import ParquetReader
from .warc import WarcReader
from .wet import WetReader

__all__ = ["JsonlReader", "ParquetReader", "WarcReader", "WetReader", "detect_format", "open_reader"]

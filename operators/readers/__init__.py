"""Readers: one shard (WARC, WET, JSONL, Parquet) -> document batches; format sniffed from content."""
from __future__ import annotations

import re
from typing import Any

from engine.io import open_input, read_head
from engine.operator import READERS, Reader

from .jsonl import JsonlReader
from .parquet import ParquetReader
from .stream import ByteStream
from .warc import WarcReader
from .wet import WetReader

__all__ = ["JsonlReader", "ParquetReader", "WarcReader", "WetReader", "detect_format", "open_reader"]

#: How much of a (decompressed) shard the sniffer looks at: enough for a warcinfo and a few records.
HEAD_BYTES = 65_536
_WARC_TYPE = re.compile(rb"^WARC-Type:[ \t]*([A-Za-z-]+)", re.M | re.I)
_NAME_HINTS = (
    ((".wet", ".wet.gz", ".wet.txt", ".wet.txt.gz"), "wet"),
    ((".warc", ".warc.gz", ".arc", ".arc.gz", ".wat", ".wat.gz"), "warc"),
    ((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz"), "jsonl"),
    ((".parquet", ".pq"), "parquet"),
)


def _name_hint(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    for suffixes, fmt in _NAME_HINTS:
        if name.endswith(suffixes) or any(f"{s}." in name for s in suffixes if s.count(".") == 1):
            return fmt
    return None


def _head(path: str) -> bytes:
    """The decompressed head; a corrupt gzip start yields what decodes (never an exception)."""
    try:
        return read_head(path, HEAD_BYTES)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception:  # noqa: BLE001 - e.g. zlib.error from a damaged first member
        with open_input(path, "rb") as f:
            s = ByteStream(f)
            return s.read(HEAD_BYTES)


def detect_format(path: str) -> str:
    """"warc" | "wet" | "jsonl" | "parquet", from the (gunzipped) head of the file.

    The name only breaks ties. A file that looks like nothing known gets its name's format, or
    "warc": the chosen reader then records why it could not read it (a job never dies here).
    """
    head = _head(path)
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:4] == b"PAR1":
        return "parquet"
    if body.startswith(b"WARC/"):
        types = [t.lower() for t in _WARC_TYPE.findall(head)]
        if b"conversion" in types:
            return "wet"
        if types and set(types) <= {b"warcinfo"}:
            return _name_hint(path) if _name_hint(path) in ("warc", "wet") else "warc"
        return "warc"
    if body.startswith(b"filedesc://"):
        return "warc"
    if body[:1] == b"{":
        return "jsonl"
    return _name_hint(path) or "warc"


def reader_options() -> set[str]:
    """Every option some reader accepts (a job's input.options may serve several formats)."""
    out: set[str] = set()
    for cls in READERS.values():
        out |= set(getattr(cls, "OPTIONS", ()))
    return out


def open_reader(path: str, fmt: str = "auto", **params: Any) -> Reader:
    """A configured reader for this shard.

    Options another reader accepts are ignored (one job may mix WARC and JSONL inputs with
    `text_field` set); an option no reader knows is an error, so typos do not pass silently.
    """
    if fmt == "auto":
        fmt = detect_format(path)
    cls = READERS.get(fmt)
    if cls is None:
        raise ValueError(f"unknown input format {fmt!r}; known: {sorted(READERS)}")
    unknown = sorted(set(params) - reader_options())
    if unknown:
        raise ValueError(f"unknown reader option(s) {unknown}; known: {sorted(reader_options())}")
    own = getattr(cls, "OPTIONS", set())
    return cls(**{k: v for k, v in params.items() if k in own})

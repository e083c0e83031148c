"""The reader contract, and how the engine picks a reader for a shard.

A reader turns one shard into document batches and never raises on bad data: every record it meets
becomes a row, a document or one marked with `_drop_reason` (a damaged header, a line that is not a
JSON object), so that it is counted and lands in the rejects with where it was; then it goes on.
`stats` counts records by type and skips by reason (non-document records such as requests);
`errors` lists what ended a shard early (a truncated gzip member) with the records before it kept.
A failure of the storage itself (`engine.errors.StorageError`) is the one exception a reader lets
through; a reader that raises anything else fails its shard, which stats.json then reports as
unaccounted (`reader.failed_shards`, `accounting_ok` false).

Input formats are registered readers: `input.format` names one, or `auto` asks every registered
reader's `sniff` about the (decompressed) head of the file.
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from engine import registry
from engine.errors import JobError, StorageError
from engine.io import open_input

#: How much of a (decompressed) shard the sniffers look at: enough for a header and a few records.
HEAD_BYTES = 65_536


@dataclasses.dataclass(frozen=True)
class ShardRange:
    """A part of one input file read as a unit of work of its own (a big file split for the workers).

    Ranges start where a record starts (a line, a gzip member, a row group), so a record is read by
    exactly one range. `first_ordinal` is how many rows the reader emits for the file before this
    range: the engine's keys (file << 32 | ordinal) and the reader's ids and `source` are then the
    same whatever the split."""

    #: Where the range's first record begins: a byte offset (a row number for row-based formats).
    start: int
    #: Where the next range begins (exclusive); -1: the end of the file.
    end: int
    #: Rows the reader emits for the file before this range.
    first_ordinal: int
    #: Reader-specific place of the first record (e.g. lines before `start`, for a JSONL `source`).
    first_record: int = 0


class Reader:
    kind: ClassVar[str] = "reader"
    #: The format name job files use (`input.format`).
    name: ClassVar[str] = ""
    #: Column the reader fills with content (e.g. "html" for WARC, "text" for JSONL).
    content_column: ClassVar[str] = "text"
    #: Columns it adds to the engine's base columns (what later operators may read).
    columns: ClassVar[tuple[str, ...]] = ()
    #: Raw payload columns it fills that are never written to documents/ (e.g. html).
    transient_columns: ClassVar[tuple[str, ...]] = ()
    #: Options a job may pass in `input.options`.
    OPTIONS: ClassVar[set[str]] = set()
    #: File name endings that hint at this format when the content says nothing.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: Among readers whose `sniff` says yes, the highest priority wins (a WET file is also WARC).
    sniff_priority: ClassVar[int] = 0
    #: The reader given a file that looks like nothing known: it records why it cannot read it.
    fallback: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.stats: dict[str, Any] = {"records": {}, "skipped": {}}
        self.errors: list[str] = []

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        """Does a file starting with these (decompressed) bytes look like this format?"""
        return False

    def read(self, path: str, batch_size: int, part: ShardRange | None = None) -> Iterator[pa.RecordBatch]:
        """The file's rows as batches; with `part`, only the rows of that range."""
        raise NotImplementedError

    def split(self, path: str, target_bytes: int) -> list[ShardRange] | None:
        """Ranges of about `target_bytes` each, found by a scan much cheaper than reading (an index, a
        footer, counting lines); None when the file cannot be split (the default: it is read whole).
        The ranges must depend only on the file and `target_bytes`, never on the worker count."""
        return None

    def open_shard(self, path: str):
        """The shard opened for reading, or None with the reason recorded in `errors` (a missing or
        unreadable shard is reported, not raised; a storage failure is raised, to be retried)."""
        try:
            return open_input(path, "rb")
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"cannot open: {type(e).__name__}: {e}")
            return None

    def count(self, group: str, key: str, n: int = 1) -> None:
        d = self.stats.setdefault(group, {})
        d[key] = d.get(key, 0) + n


def known_options() -> set[str]:
    """Every option some reader accepts (one job's input.options may serve several formats)."""
    out: set[str] = set()
    for cls in registry.READERS.values():
        out |= set(cls.OPTIONS)
    return out


def name_hint(path: str) -> str | None:
    """The format a file's name suggests (the longest matching suffix wins), or None."""
    name = path.rsplit("/", 1)[-1].lower()
    best: tuple[int, str] | None = None
    for fmt, cls in registry.READERS.items():
        for s in cls.suffixes:
            if name.endswith(s) or name.endswith(s + ".gz") or f"{s}." in name:
                if best is None or len(s) > best[0]:
                    best = (len(s), fmt)
    return best[1] if best else None


def sniff_format(path: str, head: bytes) -> str:
    """The format of a file from its head; the name only breaks ties. A file that looks like
    nothing known gets its name's format, or the fallback reader's."""
    hits = [cls for cls in registry.READERS.values() if cls.sniff(head, path)]
    if hits:
        return max(hits, key=lambda c: c.sniff_priority).name
    hint = name_hint(path)
    if hint:
        return hint
    fallback = [c.name for c in registry.READERS.values() if c.fallback]
    if not fallback:
        raise JobError(f"input {path}: no registered reader recognises it")
    return fallback[0]


def detect_format(path: str) -> str:
    """The format of a file, sniffed from its (decompressed) head."""
    return sniff_format(path, read_head(path, HEAD_BYTES))


def open_reader(path: str, fmt: str = "auto", **params: Any) -> Reader:
    """A configured reader for this shard (`fmt` auto: sniffed). Options that another reader
    accepts are ignored (a job may mix WARC and JSONL inputs with `text_field` set); an option no
    reader knows is an error, so typos do not pass silently."""
    if fmt == "auto":
        fmt = detect_format(path)
    try:
        cls = registry.get_reader(fmt)
    except KeyError as e:
        raise JobError(f"input.format: {e.args[0]}") from None
    unknown = sorted(set(params) - known_options())
    if unknown:
        raise JobError(f"input.options: unknown reader option(s) {unknown}; known: {sorted(known_options())}")
    return cls(**{k: v for k, v in params.items() if k in cls.OPTIONS})


def read_head(path: str, n: int = 8192) -> bytes:
    """The first n bytes of a file, gunzipped when it is gzip (member after member); a damaged or
    truncated gzip stream gives what decoded before the damage, never an exception."""
    with open_input(path) as f:
        raw = f.read(max(n, 4096))
        if raw[:2] != b"\x1f\x8b":
            return raw[:n]
        out = bytearray()
        data = raw
        dec = zlib.decompressobj(31)
        while len(out) < n and data:
            try:
                out += dec.decompress(data, n - len(out))
            except zlib.error:
                break
            if dec.eof:
                data = dec.unused_data or f.read(65536)
                if data[:2] != b"\x1f\x8b":
                    break
                dec = zlib.decompressobj(31)
            elif dec.unconsumed_tail:
                data = dec.unconsumed_tail
            else:
                data = f.read(65536)
        return bytes(out[:n])

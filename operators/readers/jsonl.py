"""JSONL / JSONL.gz reader: one JSON object per line -> documents, every other field kept as a column.

The engine's writer appends all batches of a shard to one Parquet file, so the column types are
fixed by the first `INFER_ROWS` records (or `INFER_BYTES` of lines, whichever comes first: never by
the batch size, so the output does not depend on it) and later rows are coerced to them; nested or
mixed-type fields become JSON strings (a column that is an int in one line and a string in the next
cannot be typed).
CCNet output (`raw_content`, no `id`) reads as is: text falls back to `raw_content`, id to `digest`.

The Python path below defines what every line reads as. Once the kinds are fixed, blocks of lines go
to pyarrow's JSON parser (jsonl_arrow.py), which takes the runs it provably reads the same and hands
every other line back here. A plain file splits into line-aligned ranges (jsonl_ranges.py); a range
gets the kinds of the file's head, so its rows are typed as in the unsplit read.
"""
from __future__ import annotations

import collections
import json
import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from engine.documents import DROP_REASON, make_batch
from operators.columns import HTML
from engine.errors import StorageError
from engine.io import fs_and_path
from engine.reader import Reader, ShardRange
from engine.registry import register

from .base import DOC_COLUMNS, basename, check_params, stable_id
from .jsonl_arrow import ArrowLines
from .jsonl_ranges import RangeFile, line_ranges
from .stream import ByteStream

#: Input fields whose names the engine owns get this prefix (e.g. Dolma's "source" -> "input_source").
RENAME_PREFIX = "input_"
_TOO_LARGE = b"\x00too_large"
_INT64 = (-(2**63), 2**63 - 1)
#: Kind of a fixed column: "str" plain strings, "json" JSON text, "int", "float", "bool".
_ARROW = {"str": pa.string(), "json": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
#: Bytes of whole lines handed on at a time (to pyarrow's parser, or line by line to Python's).
BLOCK_BYTES = 1 << 20
#: How many records (at most how many bytes of lines) fix the extra columns and their types.
INFER_ROWS = 1000
INFER_BYTES = 64 << 20


def _kind(values: list) -> str:
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int" if _INT64[0] <= v <= _INT64[1] else "json")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("json")
    if not kinds:
        return "str"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"int", "float"}:
        return "float"
    return "json"


def _coerce(v: Any, kind: str) -> tuple[Any, bool]:
    """(value for a column of this kind, ok); not ok means the value was lost (set to null)."""
    if v is None:
        return None, True
    if kind == "json":
        return json.dumps(v, ensure_ascii=False, sort_keys=True), True
    if kind == "str":
        return (v, True) if isinstance(v, str) else (json.dumps(v, ensure_ascii=False, sort_keys=True), True)
    if kind == "bool":
        return (v, True) if isinstance(v, bool) else (None, False)
    if kind == "int":
        if isinstance(v, bool):
            return int(v), True
        if isinstance(v, int) and _INT64[0] <= v <= _INT64[1]:
            return v, True
        if isinstance(v, float) and math.isfinite(v) and v.is_integer() and _INT64[0] <= v <= _INT64[1]:
            return int(v), True
        return None, False
    if kind == "float":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                return float(v), True
            except OverflowError:
                return None, False
        return None, False
    return None, False


#: A JSON escape or a (CESU-8) byte sequence that json.loads turns into a UTF-16 surrogate.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _fix_surrogates(v: Any) -> Any:
    """Lone surrogates (a cut emoji pair, "\\ud83d" alone) -> U+FFFD: Arrow strings must be UTF-8."""
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fix_surrogates(x) for x in v]
    return v


def _as_str(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)


class TableBuilder:
    """Turns field dicts into batches whose extra columns keep the types of the first batch."""

    def __init__(self, reader: Reader, text_field: str, id_field: str, shard: str) -> None:
        self.reader = reader
        self.text_field = text_field
        self.id_field = id_field
        self.shard = shard
        self.kinds: dict[str, str] | None = None  # fixed after the first batch
        #: Input fields met before the kinds were fixed -> the Python types of their values (the
        #: pyarrow path expects no other fields, and reads an id of ints as ints).
        self.fields: dict[str, set[str]] = {}
        self.rows: list[tuple[dict, int]] = []

    def column_name(self, field: str) -> str:
        if field in DOC_COLUMNS or field.startswith("_"):
            return RENAME_PREFIX + field.lstrip("_")
        return field

    def base(self, rec: dict, pos: int) -> tuple[dict, dict]:
        """Base columns (id, url, date, source, text, html) and the remaining extra fields."""
        if self.kinds is None:
            for k, v in rec.items():
                self.fields.setdefault(k, set()).add(type(v).__name__)
        rec = dict(rec)
        tf = self.text_field
        if tf == "auto":
            tf = "text" if "text" in rec else "raw_content" if "raw_content" in rec else "text"
        text = rec.pop(tf, None)
        idv = rec.pop(self.id_field, None)
        if idv is None and self.id_field == "id" and isinstance(rec.get("digest"), str):
            idv = rec["digest"]  # CCNet: the sha1 of the text, stable and already unique-ish
        source = f"{self.shard}:{pos}"
        meta = rec.get("metadata")
        if "url" not in rec and isinstance(meta, dict) and isinstance(meta.get("url"), str):
            rec["url"] = meta["url"]  # Dolma keeps the URL in metadata; the dict stays as a column too
        base = {
            "id": _as_str(idv) if idv is not None else stable_id(self.shard, pos),
            "url": _as_str(rec.pop("url", None)),
            "date": _as_str(rec.get("date") if "date" in rec else rec.get("date_download")),
            "source": source,
            "html": rec.pop("html") if isinstance(rec.get("html"), str) else None,
            "text": text if isinstance(text, str) else _as_str(text),
        }
        rec.pop("date", None)
        reason = None
        if base["text"] is None and base["html"] is None:
            reason = "missing_text"
        base[DROP_REASON] = reason
        return base, {self.column_name(k): v for k, v in rec.items()}

    def reject(self, pos: int, reason: str) -> tuple[dict, dict]:
        """A row for a line that is not a document (bad JSON, not an object, ...): named by its line."""
        base = {"id": stable_id(self.shard, pos), "url": None, "date": None, "source": f"{self.shard}:{pos}",
                "html": None, "text": None, DROP_REASON: reason}
        return base, {}

    def infer(self, items: list[tuple[dict, dict]]) -> None:
        """Fix the extra columns and their kinds from these (the first) records."""
        names: dict[str, None] = {}
        for _, extra in items:
            for k in extra:
                names.setdefault(k, None)
        self.kinds = {k: _kind([e.get(k) for _, e in items]) for k in names}

    def batch(self, items: list[tuple[dict, dict]]) -> pa.RecordBatch:
        """The items as one batch; an item Arrow cannot take becomes a `reader_error` row, not the
        end of the shard."""
        try:
            return self.build(items)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            if len(items) == 1:
                base = items[0][0]
                return self.build([self.reject(int(base["source"].rsplit(":", 1)[1]), "reader_error")])
            one_by_one = pa.Table.from_batches([self.batch([it]) for it in items])
            return one_by_one.combine_chunks().to_batches()[0]

    def build(self, items: list[tuple[dict, dict]]) -> pa.RecordBatch:
        cols: dict[str, list] = {c: [b[c] for b, _ in items] for c in DOC_COLUMNS}
        if self.kinds is None:
            self.infer(items)
        lost: dict[str, int] = {}
        for k, kind in self.kinds.items():
            vals = []
            for _, e in items:
                v, ok = _coerce(e.get(k), kind)
                if not ok:
                    lost[k] = lost.get(k, 0) + 1
                vals.append(v)
            cols[k] = vals
        for _, e in items:
            for k in e:
                if k not in self.kinds:
                    lost[k] = lost.get(k, 0) + 1
        schema = pa.schema([pa.field(HTML, pa.string()), pa.field(DROP_REASON, pa.string())] +
                           [pa.field(k, _ARROW[kind]) for k, kind in self.kinds.items()])
        batch = make_batch(cols, schema)
        for k, n in lost.items():
            self.reader.count("coerced", k, n)
        return batch


@register
class JsonlReader(Reader):
    """JSON lines (plain or gzip) -> `text` documents with the input's own fields as columns."""

    name: ClassVar[str] = "jsonl"
    content_column: ClassVar[str] = "text"
    suffixes: ClassVar[tuple[str, ...]] = (".jsonl", ".json", ".ndjson")
    columns: ClassVar[tuple[str, ...]] = ("html",)
    transient_columns: ClassVar[tuple[str, ...]] = ("html",)
    OPTIONS: ClassVar[set[str]] = {"text_field", "id_field", "max_bytes"}
    #: Parse with pyarrow where it reads lines as Python does (False: the Python path only, for tests).
    _arrow: ClassVar[bool] = True

    def __init__(self, text_field: str = "auto", id_field: str = "id", max_bytes: int = 10_000_000,
                 **params: Any) -> None:
        check_params(self.name, params, set())
        super().__init__(text_field=text_field, id_field=id_field, max_bytes=max_bytes)
        self.text_field = text_field
        self.id_field = id_field
        self.max_bytes = int(max_bytes)
        self._arrow_rows = 0  # rows the pyarrow path read (for tests; never in stats)

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"

    def split(self, path: str, target_bytes: int) -> list[ShardRange] | None:
        """Line-aligned byte ranges of a plain file (a gzip file cannot be entered mid-stream: None)."""
        f = self.open_shard(path)
        if f is None:
            return None
        with f:
            if f.read(2) == b"\x1f\x8b":
                return None
            return line_ranges(f, target_bytes, self.max_bytes)

    def read(self, path: str, batch_size: int, part: ShardRange | None = None) -> Iterator[pa.RecordBatch]:
        shard = basename(path)
        builder = TableBuilder(self, self.text_field, self.id_field, shard)
        if part is not None and (part.start > 0 or part.end >= 0):  # kinds from the file's head, as unsplit
            builder.kinds, builder.fields = self._head(path)
        f = self.open_shard(path)
        if f is None:
            return
        with f:
            if part is None:
                stream = ByteStream(f)
            else:
                stream = ByteStream(RangeFile(f, part.start, part.end), plain=True)
            yield from self._batches(stream, builder, max(1, int(batch_size)),
                                     0 if part is None else part.first_record)

    def _head(self, path: str) -> tuple[dict[str, str] | None, dict[str, set[str]]]:
        """The extra columns and kinds the unsplit read of this file fixes from its first records,
        and the input fields those records have (kept per process for the file's other ranges)."""
        key = _file_identity(path)
        if key is not None:
            key += (self.text_field, self.id_field, self.max_bytes, INFER_ROWS, INFER_BYTES)
            if key in _HEADS:
                kinds, fields = _HEADS[key]
                return dict(kinds), {k: set(v) for k, v in fields.items()}
        kinds, fields, clean = self._read_head(path)
        if key is not None and kinds is not None and clean:
            if len(_HEADS) >= 16:
                _HEADS.pop(next(iter(_HEADS)))
            _HEADS[key] = (dict(kinds), {k: set(v) for k, v in fields.items()})
        return kinds, fields

    def _read_head(self, path: str) -> tuple[dict[str, str] | None, dict[str, set[str]], bool]:
        scratch = JsonlReader(**self.params)  # its counts are not this range's
        builder = TableBuilder(scratch, self.text_field, self.id_field, basename(path))
        f = scratch.open_shard(path)
        if f is None:
            return None, {}, False
        with f:
            for _ in scratch._batches(ByteStream(f), builder, 1 << 30, 0, until_kinds=True):
                break
        return builder.kinds, builder.fields, not scratch.errors

    def _batches(self, stream: ByteStream, builder: TableBuilder, batch_size: int, lineno: int,
                 until_kinds: bool = False) -> Iterator[pa.RecordBatch]:
        """Batches of the lines of `stream`, the first of which is line `lineno` + 1 of the file
        (`until_kinds`: stop as soon as the column kinds are fixed). Once the kinds are fixed, runs
        of lines go to pyarrow's JSON parser where it reads them exactly as the Python path would."""
        out = Rebatcher(batch_size)
        fast: ArrowLines | None = None
        items: list[tuple[dict, dict]] = []
        seen_bytes = 0
        limit = self.max_bytes + 1
        try:
            for block, single in self._pieces(stream):
                if block is not None and builder.kinds is not None and self._arrow:
                    fast = fast or self._fast(builder)
                    pieces = fast.pieces(block, lineno)
                else:
                    pieces = [(None, _split_lines(block) if block is not None else [single])]
                queue = collections.deque(pieces)
                while queue:
                    batch, lines = queue.popleft()
                    if batch is not None:  # `lines`: how many lines the batch took
                        if items:
                            out.add(builder.batch(items))
                            items = []
                        out.add(batch)
                        self.count("records", "json", batch.num_rows)
                        self._arrow_rows += batch.num_rows
                        lineno += lines
                        continue
                    for k, line in enumerate(lines):
                        lineno += 1
                        if len(line) > limit:
                            line = _TOO_LARGE
                        item = self._item(line, lineno, builder)
                        if item is not None:
                            items.append(item)
                        if builder.kinds is None:  # the column kinds never depend on batch_size
                            seen_bytes += len(line)
                            if len(items) >= INFER_ROWS or seen_bytes >= INFER_BYTES:
                                builder.infer(items)
                                if until_kinds:
                                    return
                                if self._arrow and k + 1 < len(lines):  # the rest of the block: pyarrow's
                                    fast = self._fast(builder)
                                    queue.extendleft(reversed(list(fast.pieces(b"".join(lines[k + 1:]), lineno))))
                                    break
                if builder.kinds is not None:
                    for i in range(0, len(items), batch_size):
                        out.add(builder.batch(items[i:i + batch_size]))
                    items = []
                yield from out.full()
        except StorageError:
            raise
        except OSError as e:
            self.errors.append(f"read error after line {lineno}: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - bad data must not escape read()
            self.errors.append(f"reader error at line {lineno}: {type(e).__name__}: {e}")
        try:
            if items:
                if builder.kinds is None:
                    builder.infer(items)
                    if until_kinds:
                        return
                for i in range(0, len(items), batch_size):
                    out.add(builder.batch(items[i:i + batch_size]))
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"reader error at line {lineno}: {type(e).__name__}: {e}")
            return
        yield from out.rest()

    def _fast(self, builder: TableBuilder) -> ArrowLines:
        return ArrowLines(builder.kinds, builder.fields, self.text_field, self.id_field, builder.shard,
                          self.max_bytes, builder.column_name)

    def _item(self, line: bytes, lineno: int, builder: TableBuilder) -> tuple[dict, dict] | None:
        try:
            return self._parse(line, lineno, builder)
        except (StorageError, OSError):
            raise
        except Exception as e:  # noqa: BLE001 - one line the reader cannot handle is rejected
            return builder.reject(lineno, f"reader_error:{type(e).__name__}")

    def _pieces(self, stream: ByteStream) -> Iterator[tuple[bytes | None, bytes | None]]:
        """(block, None) for a block of whole lines, (None, line) for a line read alone (longer
        than a block, or the last one): a truncated or corrupt gzip ends them with an error."""
        limit = self.max_bytes + 1
        while True:
            n = stream.ensure(BLOCK_BYTES)
            if not n:
                break
            nl = stream.buf.rfind(b"\n", stream.start, stream.start + n)
            if nl >= 0:
                yield stream.read(nl + 1 - stream.start), None
                continue
            line = stream.readline(limit)
            if not line:
                break
            if len(line) >= limit and not line.endswith(b"\n"):
                while True:  # drop the rest of an oversized line without holding it
                    more = stream.readline(1 << 20)
                    if not more or more.endswith(b"\n"):
                        break
                yield None, _TOO_LARGE
                continue
            if stream.error and not line.endswith(b"\n") and not stream.peekline():
                break  # the cut line of a truncated file is not bad JSON, it is lost with the cut
            yield None, line
        if stream.error:
            self.errors.append(stream.error)

    def _parse(self, line: bytes, lineno: int, builder: TableBuilder) -> tuple[dict, dict] | None:
        """The row of one line: a document, or a reject row naming why the line is none (every
        non-blank line is a record, so it is accounted for)."""
        if line is _TOO_LARGE:
            self.count("records", "json")
            return builder.reject(lineno, "too_large")
        if not line.strip():
            return None
        self.count("records", "json")
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:  # surrogatepass: CESU-8 surrogates (Java's UTF-8) are repaired below, like \ud83d escapes
            text = line.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return builder.reject(lineno, "invalid_utf8")
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError):
            return builder.reject(lineno, "invalid_json")
        if not isinstance(rec, dict):
            return builder.reject(lineno, "not_an_object")
        if _MAYBE_SURROGATE.search(line):
            rec = _fix_surrogates(rec)
        return builder.base(rec, lineno)


#: (file identity, reader options) -> (kinds, fields) of files whose ranges this process read.
_HEADS: dict[tuple, tuple[dict[str, str], dict[str, set[str]]]] = {}


def _file_identity(path: str) -> tuple | None:
    """(path, size, modification stamp) of a file, None when the storage gives no stamp: a file
    rewritten in place is not taken for the one read before."""
    try:
        fs, p = fs_and_path(path)
        info = fs.info(p)
    except StorageError:
        raise
    except Exception:  # noqa: BLE001 - no identity, no caching
        return None
    stamp = next((info[k] for k in ("mtime", "LastModified", "ETag", "etag", "updated") if info.get(k)), None)
    if stamp is None:
        return None
    return (path, info.get("size"), str(stamp))


def _split_lines(block: bytes) -> list[bytes]:
    """The lines of a block of whole lines, each with its newline."""
    parts = block.split(b"\n")
    parts.pop()
    return [x + b"\n" for x in parts]


class Rebatcher:
    """Regroups batches of any size into batches of `size` rows (the last one shorter), copied when
    cut from a larger one, so that a batch never holds on to (or pickles) another's buffers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queue: list[tuple[pa.RecordBatch, bool]] = []  # (batch, is it a cut of a larger one)
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.queue.append((batch, False))
            self.rows += batch.num_rows

    def full(self) -> Iterator[pa.RecordBatch]:
        while self.rows >= self.size:
            yield self._take(self.size)

    def rest(self) -> Iterator[pa.RecordBatch]:
        yield from self.full()
        if self.rows:
            yield self._take(self.rows)

    def _take(self, n: int) -> pa.RecordBatch:
        parts: list[tuple[pa.RecordBatch, bool]] = []
        need = n
        while need:
            b, cut = self.queue[0]
            if b.num_rows <= need:
                parts.append((b, cut))
                self.queue.pop(0)
                need -= b.num_rows
            else:
                parts.append((b.slice(0, need), True))
                self.queue[0] = (b.slice(need), True)
                need = 0
        self.rows -= n
        if len(parts) == 1 and not parts[0][1]:
            return parts[0][0]
        return pa.concat_batches([b for b, _ in parts])

"""The JSONL reader's fast path: blocks of lines parsed by pyarrow's JSON reader.

The Python path (jsonl.py) defines what a line reads as; this path gives the same rows, ids,
sources, column types and counts for the lines it can prove that for, and hands every other line
back to the Python path. It takes a run of lines only when each line starts with `{` and ends with
`}` (so one line is one object: no blank lines, no arrays, no objects spanning lines), fits
`max_bytes`, and pyarrow parses it with the reader's fixed column types and no field outside them
(pyarrow refuses a number where a string is fixed, 2.0 where an int is, duplicate keys, lone
surrogates). What pyarrow accepts but Python reads otherwise is checked after the parse: invalid
UTF-8 (pyarrow does not validate it), non-finite floats (pyarrow takes `-NaN` and `Inf`), one line
holding two objects, and the fields whose mere presence matters to the Python rules (a `text`
that is null rather than absent in `text_field: auto`, `date` against `date_download`, an `html`
that is null) where the bytes cannot show the key is absent.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from engine.documents import DROP_REASON, make_batch
from operators.columns import HTML

from .base import DOC_COLUMNS, stable_id

#: Column kinds this path fills (a "json" column is re-serialised by Python: its lines go there).
_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
#: Lines per parse at most; a run that pyarrow refuses is halved until it is this small.
MAX_RUN = 4096
MIN_RUN = 8
#: A JSON escape of a letter, digit or underscore: a key could be spelled with it.
_NAME_ESCAPE = re.compile(rb"\\u00(?:3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF])")


class Refused(Exception):
    """A run of lines this path cannot prove it reads like the Python path."""


class ArrowLines:
    """Parses runs of lines for one shard with the column kinds fixed by the reader's head."""

    def __init__(self, kinds: dict[str, str], fields_seen: dict[str, set[str]], text_field: str, id_field: str,
                 shard: str, max_bytes: int, column_name) -> None:
        self.kinds = kinds
        self.text_field = text_field
        self.id_field = id_field
        self.shard = shard
        self.limit = max_bytes + 1
        self.enabled = True
        self.failures = 0
        texts = ["text", "raw_content"] if text_field == "auto" else [text_field]
        roles = texts + [id_field, "url", "date", HTML]
        # a role field the head never had is left out: pyarrow then refuses a run that has it
        fields: dict[str, pa.DataType] = {r: pa.string() for r in roles if r in fields_seen}
        if id_field in fields and fields_seen[id_field] - {"NoneType"} == {"int"}:
            fields[id_field] = pa.int64()  # ids that are numbers: their JSON text, as Python writes it
        #: kinds column -> the input field it is read from (None: the column stays null here).
        self.sources: dict[str, str | None] = {}
        if len(set(roles)) < len(roles) or "input_html" in kinds or kinds.get("raw_content", "str") != "str" \
                or any(k in roles for k in kinds if k != "raw_content"):
            self.enabled = False  # an input whose fields play several roles: the Python path reads it
        for col, kind in kinds.items():
            raw = col
            if col.startswith("input_"):
                raw = col[len("input_"):]
                if raw not in DOC_COLUMNS or raw in roles:
                    raw = None  # from "_x" or "input_x": left to the Python path
            elif column_name(col) != col:
                raw = None
            if raw is not None and kind not in _TYPES:
                raw = None
            self.sources[col] = raw
            if raw is not None:
                fields[raw] = _TYPES[kind]
        self.float_fields = [f for f, t in fields.items() if t == pa.float64()]
        self.string_fields = [f for f, t in fields.items() if t == pa.string()]
        self.schema = pa.schema(list(fields.items()))
        self.batch_schema = pa.schema([pa.field(HTML, pa.string()), pa.field(DROP_REASON, pa.string())] +
                                      [pa.field(k, _TYPES.get(kind, pa.string())) for k, kind in kinds.items()])
        self.parse_options = pj.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="error",
                                             newlines_in_values=False)

    def pieces(self, block: bytes, lineno: int) -> Iterator[tuple[pa.RecordBatch | None, list[bytes] | int]]:
        """The lines of a block (whole lines, the first numbered lineno + 1), in order, as
        (batch, lines it took) for runs read here and (None, lines) for lines the Python path must
        read. A run holds object lines and empty ones (no row either way)."""
        arr = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        if not self.enabled:
            yield None, _lines(block, starts, ends, 0, len(ends))
            return
        last = arr[np.maximum(ends - 1, 0)]
        cr = last == 13
        last = np.where(cr, arr[np.maximum(ends - 2, 0)], last)
        size = ends - starts
        obj = (arr[np.minimum(starts, len(arr) - 1)] == 0x7B) & (last == 0x7D) & (size + 1 <= self.limit)
        obj &= size >= 2 + cr
        empty = (size == 0) | ((size == 1) & cr)
        ok = obj | empty
        edges = np.flatnonzero(np.diff(ok.astype(np.int8))) + 1
        bounds = [0] + edges.tolist() + [len(ends)]
        for a, b in zip(bounds, bounds[1:]):
            if ok[a] and obj[a:b].any():
                yield from self._runs(block, starts, ends, obj, a, b, lineno)
            else:
                yield None, _lines(block, starts, ends, a, b)

    def _runs(self, block, starts, ends, obj, i, j, lineno):
        """Lines i..j-1 (objects and empty lines), parsed in runs of at most MAX_RUN lines; a
        refused run is halved down to MIN_RUN lines, which go to the Python path."""
        todo = [(k, min(j, k + MAX_RUN)) for k in range(i, j, MAX_RUN)]
        while todo:
            a, b = todo.pop(0)
            try:
                if not self.enabled:
                    raise Refused
                rows = np.flatnonzero(obj[a:b]) + (lineno + a + 1)
                batch = self.parse(block[starts[a]: ends[b - 1] + 1], rows)
                self.failures = 0
                yield batch, b - a
            except Refused:
                self.failures += 1
                if self.failures >= 64:  # a file this path keeps refusing: stop trying (the output is the same)
                    self.enabled = False
                if b - a <= MIN_RUN or not self.enabled:
                    yield None, _lines(block, starts, ends, a, b)
                else:
                    mid = (a + b) // 2
                    todo[:0] = [(a, mid), (mid, b)]

    def parse(self, data: bytes, linenos: np.ndarray) -> pa.RecordBatch:
        """The batch of whole lines whose objects are on lines `linenos` (the others are empty);
        Refused when any of them might read otherwise in Python."""
        nlines = len(linenos)
        try:
            table = pj.read_json(pa.BufferReader(data), parse_options=self.parse_options,
                                 read_options=pj.ReadOptions(use_threads=False, block_size=max(len(data) + 1,
                                                                                               1 << 20)))
        except (pa.ArrowException, ValueError) as e:
            raise Refused from e
        if table.num_rows != nlines:  # a line held two objects
            raise Refused
        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        if not data.isascii():  # escapes decode to valid UTF-8: only raw bytes can be invalid
            try:
                for f in self.string_fields:
                    if f in cols:
                        cols[f].validate(full=True)  # pyarrow does not check UTF-8
            except pa.ArrowInvalid as e:
                raise Refused from e
        for f in self.float_fields:
            if f in cols and pc.any(pc.invert(pc.is_finite(cols[f]))).as_py():
                raise Refused  # NaN, Inf: Python may read them otherwise (or not at all)
        escaped = None
        nulls = pa.nulls(nlines, pa.string())

        def get(name: str) -> pa.Array:
            return cols[name] if name in cols else nulls  # a field left out of the schema is absent

        def absent(name: str) -> bool:
            """Can no line of the run hold this key (not even spelt with escapes)?"""
            nonlocal escaped
            if name not in cols:
                return True
            if escaped is None:
                escaped = b"\\u00" in data and _NAME_ESCAPE.search(data) is not None
            return not escaped and b'"' + name.encode() + b'"' not in data

        raw_content_popped = False
        if self.text_field == "auto":
            t = get("text")
            if t.null_count == 0:
                text = t
            elif absent("text"):  # no "text" key: Python takes raw_content
                text, raw_content_popped = get("raw_content"), True
            else:
                raise Refused
            if not raw_content_popped and "raw_content" not in self.kinds and not absent("raw_content"):
                raise Refused  # an extra field the columns do not have: Python counts it as coerced
        else:
            text = get(self.text_field)
        html = get(HTML)
        if html.null_count and not absent(HTML):
            raise Refused  # a null "html" is an extra field to Python
        ident = get(self.id_field)
        if ident.type == pa.int64():
            ident = ident.cast(pa.string())
        if self.id_field == "id" and self.sources.get("digest") == "digest" and self.kinds["digest"] == "str":
            ident = pc.coalesce(ident, cols["digest"])
        date = get("date")
        if self.sources.get("date_download") == "date_download":
            need = pc.and_(pc.is_null(date), pc.is_valid(cols["date_download"]))
            if pc.any(need).as_py():
                if self.kinds["date_download"] != "str" or not absent("date"):
                    raise Refused
                date = pc.coalesce(date, cols["date_download"])
        if ident.null_count:
            ids = ident.to_pylist()
            ident = pa.array([v if v is not None else stable_id(self.shard, n)
                              for v, n in zip(ids, linenos.tolist())], pa.string())
        out: dict[str, pa.Array] = {"id": ident, "url": get("url"), "date": date}
        out["source"] = pc.binary_join_element_wise(f"{self.shard}:", pa.array(linenos).cast(pa.string()), "")
        out["text"] = text
        out[HTML] = html
        missing = pc.and_(pc.is_null(text), pc.is_null(html))
        out[DROP_REASON] = pc.if_else(missing, pa.scalar("missing_text"), nulls) if missing.true_count else nulls
        for col, raw in self.sources.items():
            if raw is None or (raw == "raw_content" and raw_content_popped):
                out[col] = pa.nulls(nlines, self.batch_schema.field(col).type)
            else:
                out[col] = cols[raw]
        return make_batch(out, self.batch_schema)


def _lines(block: bytes, starts: np.ndarray, ends: np.ndarray, a: int, b: int) -> list[bytes]:
    """Lines a..b-1 of a block, each with its newline."""
    return [block[s:e + 1] for s, e in zip(starts[a:b].tolist(), ends[a:b].tolist())]

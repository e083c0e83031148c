"""Reading a finished output back: its documents and rejects as Arrow tables, file by file.

The files are found by the registered writers' suffixes and read by the writer that wrote them;
partition values missing from the files (a folder-only column) come from the folder names."""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from engine import io as eio
from engine import registry
from engine.documents import ID
from engine.partitioning import value_of

def output_files(root: str) -> list[str]:
    """Data files under a folder of an output, in a stable order, with the format that reads each."""
    suffixes = tuple(w.suffix for w in registry.WRITERS.values())
    return [f for f in eio.listdir_files(root) if f.endswith(suffixes)]


def read_file(path: str) -> pa.Table:
    fmt = max((w for w in registry.WRITERS.values() if path.endswith(w.suffix)), key=lambda w: len(w.suffix))
    fs, p = eio.fs_and_path(path)
    with fs.open(p, "rb") as fh:
        return fmt.read(fh)


def iter_tree(root: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Every file under `root` as a table, in file-name order, one at a time (a reader of a large
    output holds one file); a partition column the files lack is taken from the folder names."""
    for f in output_files(root):
        rel = f[len(root.rstrip("/")) + 1:]
        parts = dict(p.split("=", 1) for p in rel.split("/")[:-1] if "=" in p)
        t = read_file(f)
        for k, v in parts.items():
            if k not in t.schema.names:
                t = t.append_column(k, pa.array([value_of(v)] * t.num_rows, pa.string()))
        if columns:
            t = t.select([c for c in columns if c in t.schema.names])
        yield t


def read_tree(root: str, columns: list[str] | None = None) -> pa.Table:
    """Every file under `root`, concatenated in file-name order."""
    tables = list(iter_tree(root, columns))
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def read_documents(out: str, columns: list[str] | None = None) -> pa.Table:
    """All documents of a finished output, in a stable order (by file name, then row)."""
    return read_tree(f"{out.rstrip('/')}/documents", columns)


def read_rejects(out: str, columns: list[str] | None = None) -> pa.Table:
    return read_tree(f"{out.rstrip('/')}/rejects", columns)


def iter_documents(out: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The documents of a finished output one file at a time, each table with its file's row count."""
    return iter_tree(f"{out.rstrip('/')}/documents", columns)


def iter_rejects(out: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    return iter_tree(f"{out.rstrip('/')}/rejects", columns)


def sort_by_id(t: pa.Table) -> pa.Table:
    return t.take(pc.sort_indices(t, sort_keys=[(ID, "ascending")])) if t.num_rows else t

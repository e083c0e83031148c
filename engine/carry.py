"""What a unit carries across a barrier: its documents in Arrow IPC files, read back by its next stage.

A stage output is written once and read once by the same job and never kept, so it needs no
compression ratio; Parquet with zstd (the output's format) spent more CPU encoding and decoding it
than Arrow IPC takes to copy it (`decant bench object_store` measures both). On local disk the IPC
files are uncompressed; on object storage LZ4 frames halve the bytes sent for little CPU.
The next stage reads the batches regrouped to the job's batch size, exactly as Parquet's reader
handed them over (it merges row groups), so no operator sees a different batch.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.ipc as ipc

from engine import io as eio
from engine.registry import register
from engine.writer import Writer

#: Writer names (engine.registry) of the carry on local files and on object storage.
LOCAL, OBJECT_STORE = "carry-arrow", "carry-arrow-lz4"


@register
class CarryWriter(Writer):
    """Arrow IPC file, uncompressed."""

    name: ClassVar[str] = LOCAL
    suffix: ClassVar[str] = ".arrow"
    compression: ClassVar[str | None] = None
    holds_batches: ClassVar[bool] = False  # the next stage regroups batches anyway

    def __init__(self, fh, schema: pa.Schema) -> None:
        super().__init__(fh, schema)
        self._ipc = ipc.new_file(fh, schema, options=ipc.IpcWriteOptions(compression=self.compression))

    def write(self, batch: pa.RecordBatch) -> None:
        self._ipc.write_batch(batch)

    def close(self) -> None:
        self._ipc.close()

    @classmethod
    def read(cls, fh: Any) -> pa.Table:
        return ipc.open_file(fh).read_all()


@register
class CarryWriterLz4(CarryWriter):
    """Arrow IPC file with LZ4-frame buffers (object storage: bytes cost more than CPU)."""

    name: ClassVar[str] = OBJECT_STORE
    compression: ClassVar[str | None] = "lz4"


def carry_format(path: str) -> str:
    """The carry writer for a unit whose staging folder is `path`."""
    return OBJECT_STORE if eio.is_object_store(eio.fs_and_path(path)[0]) else LOCAL


def iter_carry(folder: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The batches of a unit's stage output, file by file (Parquet files: a stage output written
    before the carry was Arrow, read on a resume)."""
    for f in eio.listdir_files(folder):
        if f.endswith(".parquet"):
            yield from eio.iter_parquet_batches(f, batch_size)
        elif f.endswith(CarryWriter.suffix):
            yield from regroup(_ipc_batches(f), batch_size)


def _ipc_batches(path: str) -> Iterator[pa.RecordBatch]:
    """A file's batches one at a time (each read when asked for: memory stays one batch's)."""
    fs, p = eio.fs_and_path(path)
    with (pa.OSFile(p, "rb") if eio.is_local(fs) else fs.open(p, "rb")) as f:
        reader = ipc.open_file(f)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def regroup(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly `size` rows (the last one shorter), as one file's."""
    held: list[pa.RecordBatch] = []
    n = 0
    for b in batches:
        if b.num_rows == 0:
            continue
        held.append(b)
        n += b.num_rows
        while n >= size:
            t = pa.Table.from_batches(held)
            yield _one_batch(t.slice(0, size))
            rest = t.slice(size)
            held, n = rest.to_batches(), rest.num_rows
    if n:
        yield _one_batch(pa.Table.from_batches(held))


def _one_batch(t: pa.Table) -> pa.RecordBatch:
    return t.combine_chunks().to_batches()[0]

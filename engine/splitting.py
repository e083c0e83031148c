"""Units of work: which input files are read as several ranges, decided once per output.

A big file read whole keeps one worker busy while the others idle, so a file larger than
`input.split_bytes` is handed to its reader's `split` (a cheap scan: a footer, line counts, gzip
members) and each range becomes a unit of its own. The units are stored in OUT/_work/units.json
when the output is created and read back on every resume, so a re-run schedules the same units
whatever it is told now; an output made before units were stored resumes with one unit per file.
Keys stay `file << 32 | ordinal` and a range starts at its file's `first_ordinal`, so everything
global (unique ids, dedup, apply tables per file) is the same whatever the split.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from engine import io as eio
from engine.errors import StorageError
from engine.job import JobSpec
from engine.reader import ShardRange, open_reader

#: Rows one file may hold: the low 32 bits of a key are the row's ordinal in its file.
MAX_ORDINAL = 1 << 32
#: Files scanned at once at plan time (their reads wait on storage more than on the CPU).
SCAN_THREADS = 8
#: Bytes of input the driver scans for splitting, largest files first: a scan reads its file
#: (a gzip WARC is decompressed and parsed), and a job with that much input in big files has
#: enough of them to keep its workers busy without cutting them.
SCAN_BUDGET = 2**30


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """One unit of work of a stage: an input file, or one range of it."""

    file: int
    #: The range of the file; None: the whole file.
    part: ShardRange | None = None
    #: The range's place among its file's ranges.
    index: int = 0

    @property
    def label(self) -> str:
        """What names the unit's manifest record, folders and output files: a whole file keeps the
        name it always had (`000003`), a range adds its place (`000003-0001`)."""
        return f"{self.file:06d}" if self.part is None else f"{self.file:06d}-{self.index:04d}"

    @property
    def first_of_file(self) -> bool:
        """Does this unit count its file once (format, empty file)?"""
        return self.part is None or self.index == 0

    def to_dict(self) -> dict:
        d: dict = {"file": self.file}
        if self.part is not None:
            d["index"] = self.index
            d["part"] = dataclasses.asdict(self.part)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> WorkUnit:
        part = d.get("part")
        return cls(int(d["file"]), ShardRange(**part) if part else None, int(d.get("index", 0)))


def whole_files(inputs: list[str]) -> list[WorkUnit]:
    return [WorkUnit(i) for i in range(len(inputs))]


def split_inputs(spec: JobSpec, inputs: list[str]) -> list[WorkUnit]:
    """The units of a new output: files up to `split_bytes` whole, larger ones as their reader's
    ranges (whole when the reader cannot split them, or past the driver's scan budget)."""
    target = spec.input.split_bytes or 0
    if target <= 0:
        return whole_files(inputs)
    sizes = file_sizes(inputs)
    big: list[int] = []
    budget = SCAN_BUDGET
    for i in sorted((i for i, size in enumerate(sizes) if size > target), key=lambda i: (-sizes[i], i)):
        if sizes[i] > budget:
            break
        big.append(i)
        budget -= sizes[i]
    ranges: dict[int, list[ShardRange] | None] = {}
    if big:
        with ThreadPoolExecutor(min(SCAN_THREADS, len(big))) as pool:
            for i, r in zip(big, pool.map(lambda i: _ranges(spec, inputs[i], even_target(sizes[i], target)), big)):
                ranges[i] = r
    units: list[WorkUnit] = []
    for i in range(len(inputs)):
        parts = ranges.get(i)
        if parts and len(parts) > 1:
            units.extend(WorkUnit(i, p, k) for k, p in enumerate(parts))
        else:
            units.append(WorkUnit(i))
    return units


def even_target(size: int, target: int) -> int:
    """The range size that cuts a file of `size` bytes into as many ranges as `target` asks for
    (ceil(size / target)), all about the same size: cut at `target` itself the last range is what
    is left over, and two workers on 5.3 ranges of a 44 MB file take 3 and 2.3 of them."""
    return -(-size // -(-size // target)) if size > 0 and target > 0 else target


def file_sizes(inputs: list[str]) -> list[int]:
    """Each file's size in bytes (0 when it cannot be listed: its reader reports why)."""
    def size(path: str) -> int:
        try:
            fs, p = eio.fs_and_path(path)
            return int(fs.size(p) or 0)
        except StorageError:
            raise
        except Exception:  # noqa: BLE001 - gone or unreadable: read whole, its reader reports why
            return 0
    if len(inputs) < 2 or not any("://" in p for p in inputs):
        return [size(p) for p in inputs]
    with ThreadPoolExecutor(SCAN_THREADS) as pool:
        return list(pool.map(size, inputs))


def _ranges(spec: JobSpec, path: str, target: int) -> list[ShardRange] | None:
    """The reader's ranges for one file, checked: contiguous, ordinals rising and within a key;
    None (read whole) when the reader cannot split it or its scan fails on bad data."""
    try:
        reader = open_reader(path, spec.input.format, **spec.input.options)
        parts = reader.split(path, target)
    except StorageError:
        raise
    except Exception:  # noqa: BLE001 - damaged or unreadable: the whole-file read reports it
        return None
    if not parts:
        return None
    parts = list(parts)
    ok = parts[-1].end == -1 and all(
        a.end == b.start and a.first_ordinal <= b.first_ordinal for a, b in zip(parts, parts[1:]))
    if not ok or parts[-1].first_ordinal >= MAX_ORDINAL:
        raise ValueError(f"{path}: the reader's split is not a list of contiguous ranges: {parts[:4]}")
    return parts

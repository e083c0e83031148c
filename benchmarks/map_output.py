"""A global operator's map output, written and committed the way a shard task does it, for the
benchmarks that run a global operator's phases in one process (not a benchmark itself)."""
from __future__ import annotations

import pyarrow as pa

from engine.plan import GlobalLayout
from engine.shuffle import MapWriter


def write_map_output(table: pa.Table, workdir: str, shard: int, partitions: int) -> None:
    """One shard's map output (rows with a `_partition` column) through the engine's map writer,
    renamed to where the reduce of the global folder `workdir` reads it."""
    writer = MapWriter(f"{workdir}/staging/{shard}", partitions)
    writer.write(table)
    writer.commit(GlobalLayout(workdir), shard)

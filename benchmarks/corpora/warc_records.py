"""What the WARC and WET writers share: stable record ids, the warcinfo record, copy URLs, and the
loop that spreads records over gzipped shard files."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

from benchmarks.corpora.shards import shard_sizes

_NS = uuid.UUID("6f1c1a52-53f3-4d0e-9a4b-2f7f0e7d9c11")


def record_id(*parts) -> str:
    """A WARC-Record-ID that depends only on `parts`, so that a rebuild writes the same ids."""
    return f"<urn:uuid:{uuid.uuid5(_NS, ':'.join(map(str, parts)))}>"


def write_warcinfo(writer, filename: str, software: str) -> None:
    info = {"software": software, "format": "WARC File Format 1.0", "isPartOf": "decant-bench",
            "description": "decant benchmark corpus built from real pages in shared/data"}
    writer.write_record(writer.create_warcinfo_record(filename, info))


def copy_url(url: str, copy: int) -> str:
    """The URL of the copy-th copy of a document (the original's for copy 0), without fragment."""
    if copy == 0:
        return url
    sep = "&" if "?" in url else "?"
    if "#" in url:
        url = url.split("#", 1)[0]
    return f"{url}{sep}decant_copy={copy}"


def warc_shards(folder: Path, total: int, shards: int, suffix: str, software: str) -> Iterator[tuple[int, int, object]]:
    """(shard, record number, WARCWriter) for each of `total` records spread over `shards` files
    named bench-<shard><suffix> in folder, each starting with its warcinfo record."""
    from warcio.warcwriter import WARCWriter

    n = 0
    for s, count in enumerate(shard_sizes(total, shards)):
        name = f"bench-{s:05d}{suffix}"
        with open(folder / name, "wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            write_warcinfo(writer, name, software)
            for _ in range(count):
                yield s, n, writer
                n += 1

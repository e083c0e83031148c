"""Format detection from content, whatever the file is called."""
from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from operators.readers import WarcReader, detect_format
from support import read_shard


def test_format_detection_from_content(shared_data, tmp_path):
    cases = {
        "warc/cc-main-2020-34-sample.warc.gz": "warc",
        "warc/edge/warcio-example.arc": "warc",
        "warc/edge/warcio-example.arc.gz": "warc",
        "wet/cc-main-2024-22-whirlwind.warc.wet.gz": "wet",
        "wet/ccnet-sample.wet.txt": "wet",
        "ccnet-reference/cc_en_head-0091.jsonl.gz": "jsonl",
    }
    for i, (name, fmt) in enumerate(cases.items()):
        assert detect_format(str(shared_data / name)) == fmt
        renamed = tmp_path / f"shard{i}.bin"
        shutil.copy(shared_data / name, renamed)
        assert detect_format(str(renamed)) == fmt, name
    reader, rows, _ = read_shard(tmp_path / "shard0.bin")
    assert isinstance(reader, WarcReader) and len(rows) == 16
    assert rows[0]["source"].startswith("shard0.bin:")
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "t.warc.gz")  # a lying name
    assert detect_format(str(tmp_path / "t.warc.gz")) == "parquet"
